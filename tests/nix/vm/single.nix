# One node: the module's defaults, declared bucket and key, an awscli round
# trip, a static website served from a bucket, and the hardening in place.
# Runs with `nix flake check` (needs Nix >= 2.18, the nixpkgs input and KVM).
{ pkgs, module }:
let
  inherit (pkgs) lib;
  common = import ./common.nix { inherit lib; };
in
{
  name = "entrepot-single";

  nodes.machine = {
    imports = [ (common.baseNode { inherit module; node = "single"; }) ];
    services.entrepot = {
      zone = "home";
      capacity = "1G";
      replicationFactor = 1;
      web.rootDomain = ".web.test";
      ensureBuckets = [
        "roundtrip"
        "site"
      ];
      ensureKeys.tester.permissions = {
        roundtrip = {
          read = true;
          write = true;
        };
        site = {
          read = true;
          write = true;
          owner = true;
        };
      };
    };
  };

  testScript = ''
    ${common.pythonPrelude}

    start_all()
    wait_ready(machine)
    machine.wait_for_unit("entrepot-ensure.service")

    with subtest("pinned identity and CLI wrapper"):
        assert "${common.peers.single}" in status(machine), "node did not adopt nodeKeyFile"
        buckets = json.loads(machine.succeed("entrepot bucket list --json"))
        names = sorted(b["name"] for b in buckets["buckets"])
        assert names == ["roundtrip", "site"], names

    with subtest("awscli round trip"):
        machine.succeed("head -c 12M /dev/urandom > /tmp/blob")
        s3(machine, "s3 cp /tmp/blob s3://roundtrip/dir/blob")
        s3(machine, "s3 cp s3://roundtrip/dir/blob /tmp/blob.back")
        machine.succeed("cmp /tmp/blob /tmp/blob.back")
        assert "dir/blob" in s3(machine, "s3 ls --recursive s3://roundtrip")
        s3(machine, "s3 rm s3://roundtrip/dir/blob")

    with subtest("static website from a bucket"):
        machine.succeed("echo '<h1>hello from entrepot</h1>' > /tmp/index.html")
        s3(machine, "s3 cp /tmp/index.html s3://site/index.html --content-type text/html")
        s3(machine, "s3 website s3://site --index-document index.html")
        machine.wait_for_open_port(3902)
        page = machine.succeed("curl -sf -H 'Host: site.web.test' http://127.0.0.1:3902/")
        assert "hello from entrepot" in page, page

    with subtest("hardening and secrets"):
        props = machine.succeed(
            "systemctl show entrepot.service -p DynamicUser -p ProtectSystem -p NoNewPrivileges"
            " -p PrivateTmp -p CapabilityBoundingSet -p LoadCredential"
        )
        for want in ["DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n"]:
            assert want in props + "\n", f"{want!r} not in {props!r}"
        # The rendered config names credential paths, never the secrets.
        machine.fail("grep -rl '${common.clusterSecret}' /nix/store/*-entrepot.toml")
        machine.fail("grep -rl '${common.adminToken}' /nix/store/*-entrepot.toml")
        machine.succeed("grep -q /run/credentials/entrepot.service/cluster-secret /nix/store/*-entrepot.toml")
        # The service user is not root.
        pid = machine.succeed("systemctl show -p MainPID --value entrepot.service").strip()
        assert machine.succeed(f"stat -c %u /proc/{pid}").strip() != "0"

    with subtest("restart keeps data and identity"):
        s3(machine, "s3 cp /tmp/blob s3://roundtrip/kept")
        machine.systemctl("restart entrepot.service")
        wait_ready(machine)
        s3(machine, "s3 cp s3://roundtrip/kept /tmp/kept")
        machine.succeed("cmp /tmp/blob /tmp/kept")
        assert "${common.peers.single}" in status(machine)
  '';
}
