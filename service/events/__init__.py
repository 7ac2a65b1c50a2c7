"""Live delivery: the event streams of GET /v1/events, held by one thread.

- sse.py: the text/event-stream frames;
- streams.py: one stream's socket, non-blocking, with a capped buffer;
- hub.py: the thread that holds every stream of this process, follows the
  events table and fans each event out to the streams of its recipients;
- following.py: what that thread asks the database (new events, who
  receives them, a resuming stream's backlog, the retention window).

The resource (service/resources/events.py) authenticates the request,
reserves a stream and hands the connection over (service/handoff.py);
from then on no waitress thread is involved.
"""
