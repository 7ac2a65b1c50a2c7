{
  description = "service-foundation: a Falcon + Pony ORM + SQLite HTTP service";

  # Pinned to one revision of the nixos-25.11 branch (2026-05-10); flake.lock
  # carries its narHash (sha256-Ti+ZBvW6yrWWAg2szExVTwCd4qOJ3KlVr1tFHfyfi8Q=),
  # taken from several independent published flake.lock files and `nix flake
  # metadata` outputs that agree on it (no Nix here can fetch nixpkgs to
  # recompute it). What nixpkgs has at this revision was NOT evaluated here.
  # That is why the packages whose exact versions matter are built below from
  # the PyPI sdists that uv.lock names, at uv.lock's versions and hashes, rather
  # than taken from nixpkgs:
  #   - pony and waitress: pinned exactly in pyproject.toml (their internals are
  #     used), so nixpkgs' runtime-deps check rejects any other version; pony
  #     0.7.19, the last version seen in nixpkgs, also refuses Python >= 3.13.
  #   - spectree: not packaged in nixpkgs as far as the search tools showed.
  # Bump: replace the revision, run `nix flake update`, then `nix flake check`.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/8fd9daa3db09ced9700431c5b7ad0e8ba199b575";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      # The image and the checks are Linux-only; the package and the dev shell
      # should also work on macOS but nobody has tried that.
      linuxSystems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      systems = linuxSystems ++ [ "aarch64-darwin" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      pyproject = lib.importTOML ./pyproject.toml;
      inherit (pyproject.project) version;

      # Only what the wheel and its tests need: editing bench/, .ci/ or the
      # Dockerfile does not rebuild the package or rerun its tests.
      src = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./pyproject.toml
          ./README.md # pyproject.toml's `readme`: setuptools reads it
          ./LICENSE # pyproject.toml's `license-files`
          ./service
          ./db
          ./schema_migrations
          ./tests
        ];
      };

      # uv.lock is the one lock (docs/development.md): the packages built here
      # take its version and its sdist's URL and sha256.
      lockedPackages = (lib.importTOML ./uv.lock).package;
      locked =
        name:
        let
          entry = lib.findFirst (p: p.name == name) (throw "${name} is not in uv.lock") lockedPackages;
        in
        {
          inherit (entry) version;
          sdist = {
            inherit (entry.sdist) url;
            sha256 = lib.removePrefix "sha256:" entry.sdist.hash;
          };
        };

      # Python with pony, waitress and spectree at uv.lock's versions added to its
      # package set, so the app, the dev shell and anything else in the set agree.
      pythonFor =
        pkgs:
        let
          fromLock =
            name:
            let
              l = locked name;
            in
            {
              pname = name;
              inherit (l) version;
              src = pkgs.fetchurl l.sdist;
            };
          python = pkgs.python3.override {
            self = python;
            packageOverrides = final: prev: {
              pony = final.buildPythonPackage (
                fromLock "pony"
                // {
                  pyproject = true;
                  # Its pyproject.toml asks for setuptools>=77.0.3 (PEP 639 license).
                  build-system = [ final.setuptools ];
                  # Pony's own suite needs patches in nixpkgs (see its expression
                  # there); this project's tests exercise it on SQLite instead.
                  doCheck = false;
                  pythonImportsCheck = [ "pony.orm" ];
                  meta = {
                    description = "Pony Object-Relational Mapper";
                    homepage = "https://ponyorm.org/";
                    license = lib.licenses.asl20;
                  };
                }
              );

              waitress = final.buildPythonPackage (
                fromLock "waitress"
                // {
                  pyproject = true;
                  build-system = [ final.setuptools ];
                  # Its suite starts servers on fixed ports; the project's tests
                  # run waitress for real.
                  doCheck = false;
                  pythonImportsCheck = [ "waitress" ];
                  meta = {
                    description = "Production-quality pure-Python WSGI server";
                    homepage = "https://github.com/Pylons/waitress";
                    license = lib.licenses.zpl21;
                  };
                }
              );

              spectree = final.buildPythonPackage (
                fromLock "spectree"
                // {
                  pyproject = true;
                  build-system = [ final.pdm-backend ];
                  # The core has no dependencies; its pydantic and falcon plugins
                  # are extras, and this project uses both.
                  dependencies = [
                    final.pydantic
                    final.falcon
                  ];
                  doCheck = false; # the sdist ships no tests
                  pythonImportsCheck = [ "spectree" ];
                  meta = {
                    description = "OpenAPI document and validation from Python annotations";
                    homepage = "https://github.com/0b01001001/spectree";
                    license = lib.licenses.asl20;
                  };
                }
              );
            };
          };
        in
        python;

      runtimeDeps = ps: [
        ps.falcon
        ps.pony
        ps.waitress
        ps.pydantic
        ps.pydantic-settings
        ps.spectree
        ps.prometheus-client
        ps.orjson
      ];

      # pyproject.toml's `postgres` extra, PostgreSQL's driver: the package, the image
      # and the dev shell carry it, so SERVICE_DATABASE_URL works with `nix run` too.
      postgresDeps = ps: [
        ps.psycopg2 # psycopg2-binary on PyPI: the same module, built from source
      ];

      testDeps = ps: [
        ps.pytest
        ps.pytest-timeout # pyproject sets `timeout`; --strict-config needs the plugin
        ps.hypothesis
      ];

      # Attributes that may be missing from a given nixpkgs revision: taken
      # when present so the dev shell still evaluates when they are not.
      optionalPkgs = set: names: map (name: set.${name}) (lib.filter (name: set ? ${name}) names);

      packageFor =
        pkgs:
        let
          python = pythonFor pkgs;
          ps = python.pkgs;
        in
        ps.buildPythonApplication {
          pname = "service-foundation";
          inherit version src;
          pyproject = true;

          build-system = [ ps.setuptools ]; # pyproject's build-system.requires
          dependencies = runtimeDeps ps ++ postgresDeps ps;

          nativeCheckInputs = [ ps.pytestCheckHook ] ++ testDeps ps;
          # The integration tests build and run the Docker image: no Docker
          # daemon and no network in the build sandbox.
          # tests/reliability kills servers, runs 30 s of load and fuzzes with
          # schemathesis (whose nixpkgs version may differ): CI runs them, not the build.
          disabledTestPaths = [
            "tests/integration"
            "tests/reliability"
            # Generates and imports a client with openapi-python-client, whose
            # output needs httpx and attrs: the dev shell carries it, CI runs it.
            "tests/test_generated_client.py"
          ];
          disabledTestMarks = [ "integration" ];
          preCheck = ''
            export HOME="$(mktemp -d)"
            # Tests that start the real server can find the console script.
            export PATH="$out/bin:$PATH"
          '';
          # Server tests listen on 127.0.0.1.
          __darwinAllowLocalNetworking = true;

          pythonImportsCheck = [
            "service"
            "db"
            "schema_migrations"
          ];
          # The SQL migrations are package data: the service cannot start
          # without them, so an install that lost them fails here.
          postInstall = ''
            if ! compgen -G "$out/${python.sitePackages}/schema_migrations/*.sql" > /dev/null; then
              echo "schema_migrations/*.sql is missing from the installed package" >&2
              exit 1
            fi
          '';

          meta = {
            inherit (pyproject.project) description;
            license = lib.licenses.mit;
            mainProgram = "service-foundation";
            platforms = lib.platforms.unix;
          };
        };

      # `nix run` with no arguments serves; with arguments it is the CLI
      # (`nix run . -- migrate`). The database defaults to
      # var/service.sqlite3 under the working directory.
      runnerFor =
        pkgs: pkg:
        pkgs.writeShellApplication {
          name = "service-foundation-run";
          runtimeInputs = [ pkgs.coreutils ]; # dirname, mkdir
          text = ''
            if [ "$#" -eq 0 ]; then
              set -- serve
            fi
            db_path="''${SERVICE_DATABASE_PATH:-var/service.sqlite3}"
            mkdir -p "$(dirname "$db_path")"
            exec ${lib.getExe pkg} "$@"
          '';
        };

      imageFor =
        pkgs: pkg:
        let
          python = pythonFor pkgs;
          uid = "10001"; # the Dockerfile's `service` user
          # Same probe as the Dockerfile's HEALTHCHECK: /readyz answers 503
          # until migrations are applied, and urlopen raises on any non-2xx.
          probe = ''
            import os, urllib.request
            urllib.request.urlopen("http://127.0.0.1:%s/readyz" % os.environ.get("SERVICE_PORT", "8080"), timeout=2)
          '';
          seconds = n: n * 1000000000; # the image config counts nanoseconds
        in
        pkgs.dockerTools.streamLayeredImage {
          name = "service-foundation";
          tag = version;
          contents = [
            # /etc/passwd and /etc/group with the Dockerfile's unprivileged user.
            (pkgs.dockerTools.fakeNss.override {
              extraPasswdLines = [ "service:x:${uid}:${uid}:service-foundation:/nonexistent:/noshell" ];
              extraGroupLines = [ "service:x:${uid}:" ];
            })
          ];
          # /data belongs to the service user; /tmp is world-writable and sticky.
          fakeRootCommands = ''
            mkdir -p data tmp
            chown ${uid}:${uid} data
            chmod 0755 data
            chmod 1777 tmp
          '';
          config = {
            # As in the Dockerfile: `docker run IMAGE migrate` runs another command.
            Entrypoint = [ (lib.getExe pkg) ];
            Cmd = [ "serve" ];
            User = "${uid}:${uid}";
            WorkingDir = "/data";
            Env = [
              "SERVICE_DATABASE_PATH=/data/service.sqlite3"
              "SERVICE_HOST=0.0.0.0"
              "SERVICE_PORT=8080"
              "PYTHONUNBUFFERED=1"
              "PYTHONDONTWRITEBYTECODE=1"
              "TMPDIR=/tmp"
            ];
            ExposedPorts = {
              "8080/tcp" = { };
            };
            Volumes = {
              "/data" = { };
            };
            Healthcheck = {
              Test = [
                "CMD"
                python.interpreter
                "-c"
                probe
              ];
              Interval = seconds 10;
              Timeout = seconds 3;
              StartPeriod = seconds 30;
              Retries = 3;
            };
            Labels = {
              "org.opencontainers.image.title" = "service-foundation";
              "org.opencontainers.image.description" = pyproject.project.description;
              "org.opencontainers.image.version" = version;
              "org.opencontainers.image.licenses" = "MIT";
            };
          };
        };
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          pkg = packageFor pkgs;
        in
        {
          default = pkg;
          service-foundation = pkg;
        }
        // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          # `nix build .#image && ./result | docker load`
          image = imageFor pkgs pkg;
        }
      );

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe (runnerFor pkgs self.packages.${pkgs.stdenv.hostPlatform.system}.default);
          meta.description = "Serve on var/service.sqlite3 in the working directory";
        };
      });

      devShells = forAllSystems (
        pkgs:
        let
          python = pythonFor pkgs;
          env = python.withPackages (
            ps:
            runtimeDeps ps
            ++ postgresDeps ps
            ++ testDeps ps
            ++ [
              ps.mypy
            ]
            # Not in every nixpkgs revision; without them the shell still works
            # and `scripts/test` (pip, .venv) provides them.
            ++ optionalPkgs ps [
              "import-linter"
              "testcontainers"
              "schemathesis"
              "gunicorn" # tests/reliability/test_wsgi.py: service/wsgi.py under gunicorn
            ]
          );
        in
        {
          default = pkgs.mkShell {
            packages = [
              env
              pkgs.ruff
              pkgs.sqlite
              # The PostgreSQL engine: initdb/pg_ctl for tests/pg.py and
              # makemigration's throwaway server, pg_dump for `backup`.
              pkgs.postgresql
              pkgs.util-linux # taskset (bench), runuser (PostgreSQL as root)
              pkgs.wrk # bench
            ]
            # tests/test_generated_client.py: nixpkgs ships it as an application.
            ++ optionalPkgs pkgs [ "openapi-python-client" ];
            # Run the tree in place: `python -m service serve`, pytest, mypy and
            # lint-imports all import service/ and db/ from the checkout.
            shellHook = ''
              export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
              export TESTCONTAINERS_RYUK_DISABLED=true
            '';
          };
        }
      );

      checks = lib.genAttrs linuxSystems (
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          lintSrc = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions [
              ./pyproject.toml
              ./service
              ./db
              ./schema_migrations
              ./tests
              (lib.fileset.maybeMissing ./bench)
            ];
          };
        in
        {
          # Building the package runs the unit tests in its check phase.
          package = self.packages.${system}.default;
          # The image's build script evaluates and its layers are assembled.
          image = self.packages.${system}.image;
          # As strict as CI (.ci/run): the lints and the formatting.
          ruff = pkgs.runCommand "service-foundation-ruff" { nativeBuildInputs = [ pkgs.ruff ]; } ''
            cd ${lintSrc}
            ruff check --no-cache .
            ruff format --no-cache --check service db tests bench
            touch $out
          '';
        }
      );
    };
}
