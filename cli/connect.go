package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/entrepot/entrepot/daemon/admin/adminclient"
	"github.com/entrepot/entrepot/daemon/config"
)

// Environment variables read by the admin client.
const (
	EnvAdminSocket = "ENTREPOT_ADMIN_SOCKET"
	EnvAdminURL    = "ENTREPOT_ADMIN_URL"
	EnvAdminToken  = "ENTREPOT_ADMIN_TOKEN"
)

// adminTarget says how to reach the admin API and why.
type adminTarget struct {
	opts adminclient.Options
	from string // which flag/setting chose it, for error messages
}

// resolveAdmin applies the order documented in the package comment.
func (a *app) resolveAdmin(c *ucli.Context) (adminTarget, error) {
	token := a.env.getenv(EnvAdminToken)
	if f := lookupString(c, "admin-token-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return adminTarget{}, fmt.Errorf("read --admin-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if u := firstNonEmpty(lookupString(c, "admin-url"), a.env.getenv(EnvAdminURL)); u != "" {
		return adminTarget{opts: adminclient.Options{URL: u, Token: token}, from: "admin URL " + u}, nil
	}
	if s := firstNonEmpty(lookupString(c, "admin-socket"), a.env.getenv(EnvAdminSocket)); s != "" {
		return adminTarget{opts: adminclient.Options{Socket: s}, from: "admin socket " + s}, nil
	}
	if d := lookupString(c, "data-dir"); d != "" {
		s := filepath.Join(d, "admin.sock")
		return adminTarget{opts: adminclient.Options{Socket: s}, from: "admin socket " + s + " (--data-dir)"}, nil
	}
	if path := lookupString(c, "config"); path != "" {
		return targetFromConfig(path, token)
	}
	dev := filepath.Join(config.DefaultDevDir, "admin.sock")
	if st, err := os.Stat(dev); err == nil && st.Mode()&os.ModeSocket != 0 {
		return adminTarget{opts: adminclient.Options{Socket: dev}, from: "admin socket " + dev + " (dev)"}, nil
	}
	if _, err := os.Stat(config.DefaultPath); err == nil {
		if t, err := targetFromConfig(config.DefaultPath, token); err == nil {
			return t, nil
		}
	}
	s := config.Default().Admin.Socket
	return adminTarget{opts: adminclient.Options{Socket: s}, from: "admin socket " + s + " (default)"}, nil
}

// targetFromConfig reads the config file without its secrets (they may be
// readable only by the daemon) and picks the socket, else the TCP listener.
func targetFromConfig(path, token string) (adminTarget, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return adminTarget{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return adminTarget{}, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Admin.Socket != "" {
		s := cfg.Admin.Socket
		if !filepath.IsAbs(s) {
			s = filepath.Join(filepath.Dir(path), s)
		}
		return adminTarget{opts: adminclient.Options{Socket: s}, from: "admin socket " + s + " (from " + path + ")"}, nil
	}
	if token == "" && cfg.Admin.TokenFile != "" {
		tf := cfg.Admin.TokenFile
		if !filepath.IsAbs(tf) {
			tf = filepath.Join(filepath.Dir(path), tf)
		}
		if b, err := os.ReadFile(tf); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	u := "http://" + strings.Replace(cfg.Admin.Listen, "0.0.0.0:", "127.0.0.1:", 1)
	return adminTarget{opts: adminclient.Options{URL: u, Token: token}, from: "admin URL " + u + " (from " + path + ")"}, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// call connects to the admin API and runs fn; fn's error is explained (a
// connection failure says where the client looked for the server).
func call[T any](a *app, c *ucli.Context, fn func(*adminclient.Client) (T, error)) (T, error) {
	var zero T
	cl, explain, err := a.client(c)
	if err != nil {
		return zero, err
	}
	v, err := fn(cl)
	if err != nil {
		return zero, explain(err)
	}
	return v, nil
}

// show calls the admin API with fn and prints its answer: as JSON with
// --json, else with text.
func show[T any](a *app, c *ucli.Context, fn func(*adminclient.Client) (T, error), text func(io.Writer, T) error) error {
	v, err := call(a, c, fn)
	if err != nil {
		return err
	}
	if wantJSON(c) {
		return printJSON(a.env.Stdout, v)
	}
	return text(a.env.Stdout, v)
}

// client returns an admin client and a function that turns connection
// failures into a hint naming where it looked.
func (a *app) client(c *ucli.Context) (*adminclient.Client, func(error) error, error) {
	t, err := a.resolveAdmin(c)
	if err != nil {
		return nil, nil, err
	}
	cl, err := adminclient.New(t.opts)
	if err != nil {
		return nil, nil, err
	}
	explain := func(err error) error {
		if err == nil {
			return nil
		}
		var ae *adminclient.Error
		if errors.As(err, &ae) {
			return err
		}
		return fmt.Errorf("%w\n(is the server running? tried %s; see --admin-socket, --admin-url, --data-dir)", err, t.from)
	}
	return cl, explain, nil
}
