# One node on its own (replication factor 1), admin API token from a file.
{
  zone = "home";
  capacity = "500G";
  replicationFactor = 1;
  hostname = "nas";
  adminTokenFile = "/run/keys/entrepot-admin-token";
  ensureBuckets = [ "photos" ];
  settings = {
    s3.region = "garage";
  };
}
