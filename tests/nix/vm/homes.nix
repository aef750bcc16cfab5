# Three homes on a simulated internet. Each home has a router VM doing NAT
# (homes 1 and 2 run miniupnpd, home 3 has no UPnP at all) and its own LAN
# VLAN with entrepot nodes:
#
#   VLAN 1 "internet"  80.100.100.0/24   r1 .1   r2 .2   r3 .3
#   VLAN 2 home1 LAN   10.0.1.0/24       r1 .1   n1a .10   n1b .11
#   VLAN 3 home2 LAN   10.0.2.0/24       r2 .1   n2 .10
#   VLAN 4 home3 LAN   10.0.3.0/24       r3 .1   n3 .10   (no UPnP)
#
# Checked: the cluster forms across the NATs; S3 written in one home is
# read in another; with home 2's node crashed, reads and writes continue;
# a node's role changed in its configuration and switched is picked up
# by the whole cluster (rebalance); the crashed node comes back and serves
# the data written while it was down.
# Runs with `nix flake check` (needs Nix >= 2.18, the nixpkgs input and KVM).
{ pkgs, module }:
let
  inherit (pkgs) lib;
  common = import ./common.nix { inherit lib; };
  inherit (common) peers;
  zones = [
    "home1"
    "home2"
    "home3"
  ];

  wanIP = home: "80.100.100.${toString home}";
  lanIP = home: host: "10.0.${toString home}.${toString host}";
  addr = ip: prefix: [
    {
      address = ip;
      prefixLength = prefix;
    }
  ];

  router =
    { home, upnp }:
    { ... }:
    {
      virtualisation.vlans = [
        1
        (home + 1)
      ];
      networking.useDHCP = false;
      networking.nftables.enable = true;
      networking.interfaces.eth1.ipv4.addresses = lib.mkForce (addr (wanIP home) 24);
      networking.interfaces.eth2.ipv4.addresses = lib.mkForce (addr (lanIP home 1) 24);
      networking.nat = {
        enable = true;
        internalInterfaces = [ "eth2" ];
        externalInterface = "eth1";
      };
      networking.firewall.trustedInterfaces = [ "eth2" ];
      services.miniupnpd = lib.mkIf upnp {
        enable = true;
        externalInterface = "eth1";
        internalIPs = [ "eth2" ];
        natpmp = true;
        appendConfig = ''
          ext_ip=${wanIP home}
        '';
      };
    };

  # rpcPort differs between the two nodes of home 1 so both can be mapped.
  node =
    {
      name,
      home,
      host,
      rpcPort ? 3901,
      upnp,
      bootstrap,
    }:
    { ... }:
    {
      imports = [ (common.baseNode { inherit module; node = name; }) ];
      virtualisation.vlans = [ (home + 1) ];
      networking.useDHCP = false;
      networking.interfaces.eth1.ipv4.addresses = lib.mkForce (addr (lanIP home host) 24);
      networking.defaultGateway = lanIP home 1;
      services.entrepot = {
        zone = "home${toString home}";
        capacity = "1G";
        replicationFactor = 3;
        cluster.zones = zones;
        rpc.listen = "/ip4/0.0.0.0/tcp/${toString rpcPort}";
        upnp = {
          enable = upnp;
          expose = [ "rpc" ];
        };
        bootstrapPeers = bootstrap;
        ensureBuckets = [ "shared" ];
        ensureKeys.tester.permissions.shared = {
          read = true;
          write = true;
        };
      };
      # Role change used by the test: the same node offering more capacity.
      specialisation.bigger.configuration.services.entrepot.capacity = lib.mkForce "2G";
    };

  viaWan = home: port: id: "/ip4/${wanIP home}/tcp/${toString port}/p2p/${id}";
  viaLan = home: host: port: id: "/ip4/${lanIP home host}/tcp/${toString port}/p2p/${id}";
in
{
  name = "entrepot-homes";

  nodes = {
    r1 = router { home = 1; upnp = true; };
    r2 = router { home = 2; upnp = true; };
    r3 = router { home = 3; upnp = false; };

    n1a = node {
      name = "n1a";
      home = 1;
      host = 10;
      upnp = true;
      bootstrap = [
        (viaLan 1 11 3911 peers.n1b)
        (viaWan 2 3901 peers.n2)
      ];
    };
    n1b = node {
      name = "n1b";
      home = 1;
      host = 11;
      rpcPort = 3911;
      upnp = true;
      bootstrap = [
        (viaLan 1 10 3901 peers.n1a)
        (viaWan 2 3901 peers.n2)
      ];
    };
    n2 = node {
      name = "n2";
      home = 2;
      host = 10;
      upnp = true;
      bootstrap = [
        (viaWan 1 3901 peers.n1a)
        (viaWan 1 3911 peers.n1b)
      ];
    };
    # Home 3 has no UPnP: its node only dials out.
    n3 = node {
      name = "n3";
      home = 3;
      host = 10;
      upnp = false;
      bootstrap = [
        (viaWan 1 3901 peers.n1a)
        (viaWan 2 3901 peers.n2)
      ];
    };
  };

  testScript =
    { nodes, ... }:
    ''
      ${common.pythonPrelude}

      ALL = {"n1a": n1a, "n1b": n1b, "n2": n2, "n3": n3}
      PEERS = json.loads('${builtins.toJSON peers}')

      def wait_sees(machine, names, timeout=600):
          ids = " ".join(f"-e {PEERS[n]}" for n in names)
          # every id must appear: count distinct matches
          machine.wait_until_succeeds(
              f"test $(entrepot status --json | grep -o {ids} | sort -u | wc -l) -eq {len(names)}",
              timeout=timeout,
          )

      start_all()
      for r in [r1, r2, r3]:
          r.wait_for_unit("network.target")
      r1.wait_for_unit("miniupnpd.service")
      r2.wait_for_unit("miniupnpd.service")

      with subtest("nodes start behind their NATs"):
          for m in ALL.values():
              wait_ready(m)
          # home 3 has no router port mapping at all
          r3.fail("nft list ruleset | grep -q miniupnpd")

      with subtest("UPnP maps the rpc ports on the routers that offer it"):
          r1.wait_until_succeeds("nft list ruleset | grep -q 'dport 3901'", timeout=120)
          r1.wait_until_succeeds("nft list ruleset | grep -q 'dport 3911'", timeout=120)
          r2.wait_until_succeeds("nft list ruleset | grep -q 'dport 3901'", timeout=120)

      with subtest("the cluster forms across homes"):
          for m in ALL.values():
              wait_sees(m, list(ALL.keys()))
          for m in ALL.values():
              m.wait_for_unit("entrepot-ensure.service")

      def put_random(machine, key, size):
          machine.succeed(f"head -c {size} /dev/urandom > /tmp/obj")
          machine.wait_until_succeeds(f"{AWS} s3 cp /tmp/obj s3://shared/{key}", timeout=120)
          return machine.succeed("sha256sum < /tmp/obj").split()[0]

      def wait_reads(machine, key, digest, timeout=120):
          machine.wait_until_succeeds(
              f"{AWS} s3 cp s3://shared/{key} - | sha256sum | grep -q {digest}", timeout=timeout
          )

      with subtest("S3 written in home 1 is read in homes 2 and 3"):
          a = put_random(n1a, "a", "5M")
          for m in [n2, n3]:
              wait_reads(m, "a", a)

      with subtest("home 2's node crashes: reads and writes continue"):
          n2.crash()
          b = put_random(n3, "b", "3M")
          wait_reads(n1b, "b", b)
          wait_reads(n1a, "a", a, timeout=30)

      with subtest("a role change is switched in and the cluster rebalances"):
          n3.succeed("${nodes.n3.system.build.toplevel}/specialisation/bigger/bin/switch-to-configuration test")
          n3.wait_for_unit("entrepot.service")
          # every live node's view of n3 reports the new capacity (2 GiB)
          for m in [n1a, n1b, n3]:
              m.wait_until_succeeds(
                  "entrepot status --json | grep -E -q '2147483648|\"2G\"|2\\.0 GiB'", timeout=300
              )
          # data stays readable during and after the move
          wait_reads(n1b, "a", a, timeout=30)

      with subtest("the crashed node comes back and serves what it missed"):
          n2.start()
          wait_ready(n2)
          wait_sees(n2, list(ALL.keys()))
          wait_reads(n2, "b", b, timeout=300)
    '';
}
