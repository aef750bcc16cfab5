# Declared buckets, keys and permissions: applied after start, re-applied
# idempotently on every switch, nothing undeclared deleted unless
# pruneUndeclared is set.
#
#   base     buckets photos, docs;  key tester rw on photos
#   more     + bucket music; tester loses write on photos, gains read on music;
#            + key backup (may create buckets)
#   fewer    only photos declared: docs, music and backup stay (no pruning)
#   prune    only photos and tester, pruneUndeclared = true: the rest goes
#
# Runs with `nix flake check` (needs Nix >= 2.18, the nixpkgs input and KVM).
{ pkgs, module }:
let
  inherit (pkgs) lib;
  common = import ./common.nix { inherit lib; };
  backupKey = {
    id = "GKbackup0123456789abcdef";
    secret = "3c5e7a9b1d3f5a7c9e0b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5f7b9d0a2c";
  };
in
{
  name = "entrepot-declarative";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ (common.baseNode { inherit module; node = "decl"; }) ];
      systemd.services.entrepot-test-secrets.script = lib.mkAfter ''
        install -m 0400 ${pkgs.writeText "test-backup-key" backupKey.secret} /run/keys/entrepot-backup-key
      '';
      services.entrepot = {
        zone = "home";
        capacity = "1G";
        replicationFactor = 1;
        ensureBuckets = [
          "photos"
          "docs"
        ];
        ensureKeys.tester.permissions.photos = {
          read = true;
          write = true;
        };
      };

      specialisation.more.configuration.services.entrepot = {
        ensureBuckets = lib.mkForce [
          "photos"
          "docs"
          "music"
        ];
        ensureKeys.tester.permissions = {
          photos.write = lib.mkForce false;
          music.read = true;
        };
        ensureKeys.backup = {
          accessKeyId = backupKey.id;
          secretKeyFile = "/run/keys/entrepot-backup-key";
          allowCreateBucket = true;
        };
      };

      specialisation.fewer.configuration.services.entrepot.ensureBuckets = lib.mkForce [ "photos" ];

      specialisation.prune.configuration.services.entrepot = {
        ensureBuckets = lib.mkForce [ "photos" ];
        pruneUndeclared = true;
      };
    };

  testScript =
    { nodes, ... }:
    let
      top = nodes.machine.system.build.toplevel;
      switch = name: "${top}/specialisation/${name}/bin/switch-to-configuration test";
    in
    ''
      ${common.pythonPrelude}

      def buckets():
          return sorted(b["name"] for b in json.loads(machine.succeed("entrepot bucket list --json"))["buckets"] or [])

      def keys():
          return sorted(k["access_key_id"] for k in json.loads(machine.succeed("entrepot key list --json"))["keys"] or [])

      def perms(key_id, bucket):
          info = json.loads(machine.succeed(f"entrepot key info --json {key_id}"))
          for b in info.get("buckets") or []:
              if b.get("bucket") == bucket:
                  return {p for p in ["read", "write", "owner"] if b.get(p)}
          return set()

      def ensure_ran_cleanly():
          machine.wait_for_unit("entrepot-ensure.service")
          machine.succeed("systemctl is-active entrepot-ensure.service")

      def last_ensure_log():
          inv = machine.succeed("systemctl show -p InvocationID --value entrepot-ensure.service").strip()
          return machine.succeed(f"journalctl -o cat _SYSTEMD_INVOCATION_ID={inv}")

      def switch(cmd):
          machine.succeed(cmd)
          ensure_ran_cleanly()

      start_all()
      wait_ready(machine)
      ensure_ran_cleanly()
      tester = "${common.s3Key.id}"
      backup = "${backupKey.id}"

      with subtest("base declaration applied"):
          assert buckets() == ["docs", "photos"], buckets()
          assert keys() == [tester], keys()
          assert perms(tester, "photos") == {"read", "write"}
          s3(machine, "s3 cp /etc/hostname s3://photos/hostname")

      with subtest("an imperative bucket is left alone"):
          machine.succeed("entrepot bucket create manual")

      with subtest("switch to 'more': additions and a revoked permission"):
          switch("${switch "more"}")
          assert buckets() == ["docs", "manual", "music", "photos"], buckets()
          assert keys() == sorted([tester, backup]), keys()
          assert perms(tester, "photos") == {"read"}, perms(tester, "photos")
          assert perms(tester, "music") == {"read"}
          machine.fail(f"{AWS} s3 cp /etc/hostname s3://photos/denied")

      with subtest("switching again to the same declaration changes nothing"):
          machine.succeed("systemctl restart entrepot-ensure.service")
          ensure_ran_cleanly()
          log = last_ensure_log()
          assert "creating" not in log and "importing" not in log and "deleting" not in log, log
          assert buckets() == ["docs", "manual", "music", "photos"]

      with subtest("switch to 'fewer': undeclared things are not deleted"):
          switch("${switch "fewer"}")
          assert buckets() == ["docs", "manual", "music", "photos"], buckets()
          assert keys() == sorted([tester, backup]), keys()

      with subtest("switch to 'prune': undeclared buckets and keys are deleted"):
          switch("${switch "prune"}")
          assert buckets() == ["photos"], buckets()
          assert keys() == [tester], keys()
          # the declared bucket keeps its object
          assert "hostname" in s3(machine, "s3 ls s3://photos")

      with subtest("back to the base declaration"):
          switch("${top}/bin/switch-to-configuration test")
          assert buckets() == ["docs", "photos"], buckets()
          assert perms(tester, "photos") == {"read", "write"}
    '';
}
