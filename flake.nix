{
  description = "entrepot: a self-hosted, S3-compatible object store for home servers, replicated across homes";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      version = "0.1.0-${self.shortRev or self.dirtyShortRev or "dev"}";

      # Paths that make up the Go build. tests/nix/update-vendorhash.sh reads
      # this line: keep it on one line.
      goSrcPaths = [ "go.mod" "go.sum" "cli" "daemon" "natpunch" ];

      # Hash of `go mod vendor` over goSrcPaths. Recompute with
      # tests/nix/update-vendorhash.sh after any go.mod/go.sum change; CI
      # (go test ./tests/nix/...) fails when it is stale.
      vendorHash = "sha256-oWViEIWCj8UcoZkNkXwxtSRZRa5fso826RACkpFDBkM=";

      mkEntrepot =
        pkgs:
        pkgs.buildGo126Module {
          pname = "entrepot";
          inherit version vendorHash;
          src = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions (map (p: lib.fileset.maybeMissing (./. + "/${p}")) goSrcPaths);
          };
          subPackages = [ "cli/entrepot" ];
          env.CGO_ENABLED = "0";
          ldflags = [
            "-s"
            "-w"
            "-X github.com/entrepot/entrepot/cli.version=${version}"
          ];
          # Unit tests that need neither network (beyond loopback) nor root;
          # suites needing namespaces or root skip themselves under -short.
          checkPhase = ''
            runHook preCheck
            export HOME=$TMPDIR
            go test -short -count=1 -p $NIX_BUILD_CORES ./...
            runHook postCheck
          '';
          meta = {
            description = "Self-hosted S3-compatible object store replicated across homes over libp2p";
            homepage = "https://github.com/entrepot/entrepot";
            mainProgram = "entrepot";
            platforms = lib.platforms.linux;
          };
        };
    in
    {
      packages = forAllSystems (pkgs: rec {
        entrepot = mkEntrepot pkgs;
        default = entrepot;
      });

      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos-module ];
          services.entrepot.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };
      nixosModules.entrepot = self.nixosModules.default;

      checks = forAllSystems (
        pkgs:
        let
          args = {
            inherit pkgs;
            module = self.nixosModules.default;
          };
        in
        {
          package = self.packages.${pkgs.stdenv.hostPlatform.system}.entrepot;
          # Evaluates a whole NixOS system using the module (every option it
          # sets must exist and type-check) without building it: no KVM needed.
          module-eval =
            let
              sys = nixpkgs.lib.nixosSystem {
                inherit (pkgs.stdenv.hostPlatform) system;
                modules = [
                  self.nixosModules.default
                  {
                    boot.isContainer = true;
                    system.stateVersion = "26.05";
                    services.entrepot = {
                      enable = true;
                      zone = "home-a";
                      capacity = "1T";
                      clusterSecretFile = "/run/keys/entrepot-cluster-secret";
                      adminTokenFile = "/run/keys/entrepot-admin-token";
                      nodeKeyFile = "/run/keys/entrepot-node-key";
                      openFirewall = true;
                      upnp.enable = true;
                      ensureBuckets = [ "photos" ];
                      ensureKeys.alice = {
                        accessKeyId = "GKalice0123456789abcdef";
                        secretKeyFile = "/run/keys/entrepot-alice";
                        permissions.photos.read = true;
                      };
                    };
                  }
                ];
              };
            in
            pkgs.writeText "entrepot-module-eval" (
              builtins.unsafeDiscardStringContext sys.config.system.build.toplevel.drvPath
            );
          vm-single = pkgs.testers.runNixOSTest (import ./tests/nix/vm/single.nix args);
          vm-homes = pkgs.testers.runNixOSTest (import ./tests/nix/vm/homes.nix args);
          vm-declarative = pkgs.testers.runNixOSTest (import ./tests/nix/vm/declarative.nix args);
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            go_1_26
            gopls
            gotools
            miniupnpd
            miniupnpc
            awscli2
            rclone
            s3cmd
            restic
            jq
            curl
            nftables
            iproute2
          ];
          env.GOTOOLCHAIN = "local";
        };
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          meta.description = "entrepot server and admin CLI";
        };
      });
    };
}
