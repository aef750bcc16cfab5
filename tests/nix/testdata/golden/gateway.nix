# A gateway: serves S3 and websites, stores nothing; admin API on the LAN.
{
  zone = "home-lyon";
  gateway = true;
  hostname = "gw-lyon";
  replicationFactor = 3;
  clusterSecretFile = "/run/keys/entrepot-cluster-secret";
  adminTokenFile = "/run/keys/entrepot-admin-token";
  admin.listen = "[::]:3903";
  web.listen = "[::]:8080";
}
