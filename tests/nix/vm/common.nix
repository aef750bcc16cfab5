# Shared pieces of the entrepot NixOS VM tests (single, homes, declarative).
# Test-only secrets live here in clear text on purpose; they reach the VMs
# through /run/keys, like real secrets would, never through the module's
# settings.
{ lib }:
rec {
  # Peer ids of the pinned identities in ./keys (checked by tests/nix).
  peers = lib.importJSON ./peers.json;

  clusterSecret = "5f0e7c2a9b1d4e3f8a6c0b2d4f6e8a0c1b3d5f7e9a2c4e6f8b0d2f4a6c8e0b1d";
  adminToken = "test-admin-token-0b1d2f4a6c8e";

  # The S3 key every test declares.
  s3Key = {
    id = "GKtest0123456789abcdef01";
    secret = "7d1c3e5f7a9b0d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e2b4d6f8a0c2e4f6a8b";
  };

  # Environment for the aws CLI inside the VMs.
  awsEnv = "AWS_ACCESS_KEY_ID=${s3Key.id} AWS_SECRET_ACCESS_KEY=${s3Key.secret} AWS_DEFAULT_REGION=us-east-1";

  # A module that writes the test secrets into /run/keys before entrepot
  # starts. `node` selects the pinned identity in ./keys (null: none).
  secretsModule =
    { node ? null }:
    { pkgs, ... }:
    let
      files = {
        cluster-secret = pkgs.writeText "test-cluster-secret" clusterSecret;
        admin-token = pkgs.writeText "test-admin-token" adminToken;
        s3-key = pkgs.writeText "test-s3-key" s3Key.secret;
      } // lib.optionalAttrs (node != null) { node-key = ./keys + "/${node}.key"; };
    in
    {
      systemd.services.entrepot-test-secrets = {
        description = "entrepot VM test: secrets in /run/keys";
        wantedBy = [ "multi-user.target" ];
        requiredBy = [ "entrepot.service" ];
        before = [
          "entrepot.service"
          "entrepot-ensure.service"
        ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        script =
          ''
            install -d -m 0700 /run/keys
          ''
          + lib.concatStrings (
            lib.mapAttrsToList (name: src: ''
              install -m 0400 ${src} /run/keys/entrepot-${name}
            '') files
          );
      };
    };

  # services.entrepot settings shared by every test node.
  baseNode =
    {
      module,
      node ? null,
    }:
    { pkgs, ... }:
    {
      imports = [
        module
        (secretsModule { inherit node; })
      ];
      virtualisation.diskSize = 2048;
      virtualisation.memorySize = 1024;
      environment.systemPackages = [
        pkgs.awscli2
        pkgs.jq
        pkgs.curl
      ];
      services.entrepot = {
        enable = true;
        clusterSecretFile = "/run/keys/entrepot-cluster-secret";
        adminTokenFile = "/run/keys/entrepot-admin-token";
        nodeKeyFile = lib.mkIf (node != null) "/run/keys/entrepot-node-key";
        openFirewall = true;
        logLevel = "debug";
        ensureKeys.tester = {
          accessKeyId = s3Key.id;
          secretKeyFile = "/run/keys/entrepot-s3-key";
        };
      };
    };

  # Python helpers shared by the test scripts.
  pythonPrelude = ''
    import json

    AWS = "${awsEnv} aws --endpoint-url http://127.0.0.1:3900"

    def s3(machine, args):
        return machine.succeed(f"{AWS} {args}")

    def status(machine):
        return machine.succeed("entrepot status --json")

    def wait_ready(machine):
        machine.wait_for_unit("entrepot.service")
        machine.wait_for_open_port(3900)
        machine.wait_until_succeeds("entrepot status --json", timeout=120)
  '';
}
