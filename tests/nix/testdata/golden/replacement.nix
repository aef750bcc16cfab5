# A re-installed storage node with a new identity that takes over the old
# node's share (replaces), with every other key the module maps set away
# from its default, and the expert keys reached only through settings.
{
  zone = "home-nantes";
  capacity = "4T";
  hostname = "nas-nantes";
  replicationFactor = 3;
  clusterSecretFile = "/run/keys/entrepot-cluster-secret";
  replaces = "12D3KooWB3rS3iAzh5KDcRXX261dutXqzzK18TxsmF64Li1huFjj";
  bootstrapPeers = [ "/dns4/nas.paris.example.org/tcp/3901/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo" ];
  s3.region = "garage";
  rpc = {
    mdns = false;
    gossipInterval = "30s";
    pingInterval = "5s";
  };
  logFormat = "json";
  settings = {
    block_size = "4M";
    compression_level = 3;
    inline_threshold = 8192;
    gc_delay = "1h";
    fsync = false;
  };
}
