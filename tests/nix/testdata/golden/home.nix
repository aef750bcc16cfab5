# A storage node in one of three homes: cluster secret, bootstrap peer,
# virtual-host domains, UPnP exposing rpc and s3, tuned block settings.
{
  zone = "home-paris";
  capacity = "2T";
  tags = [ "nas" "ssd" ];
  hostname = "nas-paris";
  replicationFactor = 3;
  cluster.zones = [ "home-paris" "home-lyon" "home-nantes" ];
  clusterSecretFile = "/run/keys/entrepot-cluster-secret";
  metricsTokenFile = "/run/keys/entrepot-metrics-token";
  bootstrapPeers = [ "/dns4/nas.lyon.example.org/tcp/3901/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo" ];
  s3.rootDomain = ".s3.example.org";
  web.rootDomain = ".web.example.org";
  rpc.publicAddrs = [ "/ip4/203.0.113.7/tcp/3901" ];
  upnp = {
    enable = true;
    expose = [ "rpc" "s3" ];
  };
  logLevel = "debug";
  settings = {
    block_size = "1M";
    compression_level = 3;
    inline_threshold = 3000;
    gc_delay = "1h";
    fsync = true;
    s3.region = "garage";
    log.format = "json";
  };
}
