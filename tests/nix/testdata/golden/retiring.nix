# A node being decommissioned: it leaves the layout and its data moves to
# the others. Its older configuration set log.format through settings,
# which keeps working while logFormat is left at its default.
{
  zone = "home-lyon";
  capacity = "1T";
  hostname = "old-nas";
  clusterSecretFile = "/run/keys/entrepot-cluster-secret";
  decommission = true;
  settings = {
    log.format = "json";
    s3.region = "garage";
  };
}
