"""The interface every engine implements, and what the engines share."""
