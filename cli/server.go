package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/entrepot/entrepot/daemon"
	"github.com/entrepot/entrepot/daemon/config"
)

func (a *app) serverCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "server",
		Usage: "run the storage node",
		Description: `Runs the node with the config file (-c, default /etc/entrepot/entrepot.toml).
--dev runs a single-node development store with embedded defaults instead: data under
./entrepot-dev (or --data-dir), S3 on 127.0.0.1:3900, admin on <data-dir>/admin.sock and
127.0.0.1:3903, and an access key "dev" kept in <data-dir>/dev-credentials.json.
Without --dev, --data-dir overrides the config's data_dir.`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "config `FILE` (default " + config.DefaultPath + ")"},
			&ucli.BoolFlag{Name: "check-config", Usage: "validate the config, print it normalised (without secrets) and exit"},
			&ucli.BoolFlag{Name: "dev", Usage: "single-node development mode with embedded defaults"},
			&ucli.StringFlag{Name: "data-dir", Usage: "dev directory `DIR` (default ./" + config.DefaultDevDir + "); without --dev: overrides data_dir"},
			&ucli.StringFlag{Name: "s3-listen", Usage: "override s3.listen (`ADDR` host:port)"},
			&ucli.StringFlag{Name: "admin-listen", Usage: "override admin.listen (`ADDR` host:port)"},
		},
		Action: a.server,
	}
}

// serverConfig builds the configuration from the file or the dev defaults
// plus the command-line overrides.
func serverConfig(c *ucli.Context) (config.Config, error) {
	path := lookupString(c, "config")
	dataDir := lookupString(c, "data-dir")
	var (
		cfg config.Config
		err error
	)
	if c.Bool("dev") {
		if path != "" {
			return config.Config{}, usageError("server: --dev uses embedded defaults; it cannot be combined with -c")
		}
		cfg, err = config.Dev(dataDir)
	} else {
		if path == "" {
			path = config.DefaultPath
		}
		cfg, err = config.Load(path)
		if err == nil && dataDir != "" {
			cfg.DataDir = dataDir
		}
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) && lookupString(c, "config") == "" {
			err = fmt.Errorf("%w\n(give a config file with -c, or try a single-node store: entrepot server --dev)", err)
		}
	}
	if err != nil {
		return config.Config{}, err
	}
	if v := c.String("s3-listen"); v != "" {
		cfg.S3.Listen = v
	}
	if v := c.String("admin-listen"); v != "" {
		cfg.Admin.Listen = v
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, fmt.Errorf("%w (after command-line overrides)", err)
	}
	return cfg, nil
}

func (a *app) server(c *ucli.Context) error {
	if c.NArg() > 0 {
		return usageError("server: unexpected argument %q", c.Args().First())
	}
	cfg, err := serverConfig(c)
	if err != nil {
		return err
	}
	if c.Bool("check-config") {
		out, err := cfg.Encode()
		if err != nil {
			return err
		}
		_, err = a.env.Stdout.Write(out)
		return err
	}
	log := daemon.NewLogger(a.env.Stderr, cfg.Log)
	d, err := daemon.New(c.Context, cfg, daemon.Options{Logger: log, Version: Version(), Stdout: a.env.Stdout})
	if err != nil {
		return err
	}
	runErr := d.Run(c.Context)
	closeErr := d.Close()
	return errors.Join(runErr, closeErr)
}
