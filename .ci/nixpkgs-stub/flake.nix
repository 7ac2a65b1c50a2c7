# A stand-in for nixpkgs that covers exactly what ../../flake.nix uses, so that
# `nix flake check --no-build --override-input nixpkgs path:.ci/nixpkgs-stub` (run by
# scripts/check-flake --eval) evaluates the flake's own logic without nixpkgs, which
# cannot be fetched here.
#
# It proves: every output evaluates on every system, has the shape `nix flake check`
# demands (derivations, apps with a store-path program), names only files that exist
# in the flake's source, reads uv.lock, and passes each nixpkgs function only the
# arguments listed below (stricter than nixpkgs, which forwards unknown ones). The
# fetchurl derivations are real fixed-output ones with uv.lock's sha256.
# It cannot prove: that nixpkgs at the pinned revision has these attributes with these
# meanings and versions, that anything builds, or that the tests pass under Nix.
# Nothing here builds: every derivation's builder fails on purpose.
{
  description = "stand-in nixpkgs for evaluating service-foundation's flake";

  outputs =
    { self }:
    let
      inherit (builtins)
        attrNames
        concatLists
        concatStringsSep
        deepSeq
        filter
        listToAttrs
        match
        pathExists
        readFile
        stringLength
        substring
        throw
        ;

      lib = rec {
        fix =
          f:
          let
            x = f x;
          in
          x;
        genAttrs = names: f: listToAttrs (map (name: { inherit name; value = f name; }) names);
        importTOML = path: builtins.fromTOML (readFile path);
        inherit filter;
        findFirst =
          pred: default: list:
          let
            found = filter pred list;
          in
          if found == [ ] then default else builtins.head found;
        removePrefix =
          prefix: s:
          let
            n = stringLength prefix;
          in
          if substring 0 n s == prefix then substring n (stringLength s - n) s else s;
        optionalAttrs = cond: attrs: if cond then attrs else { };
        getExe =
          drv:
          "${drv}/bin/${drv.meta.mainProgram or (throw "getExe: ${drv.name} has no meta.mainProgram")}";
        licenses = genAttrs [ "asl20" "mit" "zpl21" ] (spdxId: { inherit spdxId; });
        platforms.unix = [
          "x86_64-linux"
          "aarch64-linux"
          "aarch64-darwin"
        ];
        # A fileset is a list of paths here; toSource keeps exactly those, and every
        # one must exist (as in nixpkgs, where a missing path is an error).
        fileset = {
          unions = sets: concatLists (map (f: if builtins.isList f then f else [ f ]) sets);
          maybeMissing = path: if pathExists path then [ path ] else [ ];
          toSource =
            { root, fileset }:
            let
              files = map (
                p: if pathExists p then toString p else throw "lib.fileset: ${toString p} does not exist"
              ) (if builtins.isList fileset then fileset else [ fileset ]);
              keep =
                path: _type:
                builtins.any (
                  f: path == f || substring 0 (stringLength f + 1) path == f + "/" || substring 0 (stringLength path + 1) f == path + "/"
                ) files;
            in
            builtins.path {
              name = "source";
              path = root;
              filter = keep;
            };
        };
      };

      # Fail on an argument nixpkgs' function would not take as meant.
      checkArgs =
        fn: allowed: args:
        let
          unknown = filter (a: !(builtins.elem a allowed)) (attrNames args);
        in
        if unknown == [ ] then
          args
        else
          throw "stand-in nixpkgs: ${fn} takes no ${concatStringsSep ", " unknown}";

      forSystem =
        system:
        let
          fake =
            name: extra:
            let
              drv = derivation {
                inherit name system;
                builder = "/bin/sh";
                args = [
                  "-c"
                  "echo 'stand-in nixpkgs: nothing can be built' >&2; exit 1"
                ];
              };
            in
            drv // extra;
          # Force every argument (strings, lists, derivations), as a build would.
          forced = args: deepSeq args args;

          hostPlatform = {
            inherit system;
            isLinux = match ".*-linux" system != null;
          };

          pythonArgs = [
            "pname"
            "version"
            "src"
            "pyproject"
            "build-system"
            "dependencies"
            "nativeCheckInputs"
            "disabledTestPaths"
            "disabledTestMarks"
            "preCheck"
            "postInstall"
            "pythonImportsCheck"
            "doCheck"
            "meta"
            "__darwinAllowLocalNetworking"
          ];

          mkPython =
            packageOverrides:
            let
              base = final: {
                buildPythonPackage =
                  args:
                  let
                    a = checkArgs "buildPythonPackage" pythonArgs (forced args);
                  in
                  fake "python3.13-${a.pname}-${a.version}" {
                    inherit (a) pname version;
                    meta = a.meta or { };
                  };
                buildPythonApplication =
                  args:
                  let
                    a = checkArgs "buildPythonApplication" pythonArgs (forced args);
                  in
                  fake "${a.pname}-${a.version}" {
                    inherit (a) pname version;
                    meta = a.meta or { };
                  };
                pytestCheckHook = fake "pytest-check-hook" { };
              }
              // lib.genAttrs [
                "setuptools"
                "pdm-backend"
                "falcon"
                "pony"
                "waitress"
                "pydantic"
                "pydantic-settings"
                "spectree"
                "prometheus-client"
                "orjson"
                "psycopg2"
                "pytest"
                "pytest-timeout"
                "hypothesis"
                "mypy"
              ] (name: fake "python3.13-${name}" { pname = name; });
              pkgs = lib.fix (final: base final // packageOverrides final (base final));
            in
            {
              inherit pkgs;
              sitePackages = "lib/python3.13/site-packages";
              interpreter = "${fake "python3-3.13" { }}/bin/python3.13";
              withPackages = f: fake "python3-3.13-env" { packages = deepSeq (f pkgs) (f pkgs); };
            };
        in
        {
          stdenv = { inherit hostPlatform; };
          python3.override =
            args:
            let
              a = checkArgs "python3.override" [ "self" "packageOverrides" ] args;
            in
            mkPython a.packageOverrides;
          fetchurl =
            args:
            let
              a = checkArgs "fetchurl" [ "url" "sha256" ] args;
            in
            if match "[0-9a-f]{64}" a.sha256 == null then
              throw "fetchurl: ${a.url}: sha256 is not 64 hex digits"
            else
              derivation {
                name = baseNameOf a.url;
                inherit system;
                inherit (a) url;
                builder = "builtin:fetchurl";
                outputHashMode = "flat";
                outputHashAlgo = "sha256";
                outputHash = a.sha256;
              };
          writeShellApplication =
            args:
            let
              a = checkArgs "writeShellApplication" [ "name" "runtimeInputs" "text" ] (forced args);
            in
            fake a.name {
              inherit (a) text;
              runtimeInputs = a.runtimeInputs or [ ];
              meta.mainProgram = a.name;
            };
          runCommand =
            name: env: script:
            deepSeq [ env script ] (fake name { inherit script; });
          mkShell =
            args:
            fake "nix-shell" (checkArgs "mkShell" [ "packages" "shellHook" ] (forced args));
          dockerTools = {
            fakeNss.override =
              args:
              fake "fake-nss" (checkArgs "fakeNss.override" [ "extraPasswdLines" "extraGroupLines" ] (forced args));
            streamLayeredImage =
              args:
              let
                a = checkArgs "streamLayeredImage" [
                  "name"
                  "tag"
                  "contents"
                  "fakeRootCommands"
                  "config"
                ] (forced args);
              in
              fake "stream-${a.name}" { };
          };
          ruff = fake "ruff" { meta.mainProgram = "ruff"; };
          sqlite = fake "sqlite" { };
          postgresql = fake "postgresql" { };
          util-linux = fake "util-linux" { };
          wrk = fake "wrk" { };
          coreutils = fake "coreutils" { };
        };
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs lib.platforms.unix forSystem;
    };
}
