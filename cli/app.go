package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	ucli "github.com/urfave/cli/v2"
)

// version is set at link time: -ldflags "-X github.com/entrepot/entrepot/cli.version=v1.2.3".
var version = ""

// Version returns the build's version: the link-time value, else the module version, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Env is the process environment the command runs in.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads environment variables; nil = none set.
	Getenv func(string) string
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// Main runs the command with the process's arguments and environment and exits.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful shutdown, restore the
		// default handling so a second Ctrl-C ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := Run(ctx, os.Args, Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks a wrong invocation (exit status 2).
func usageError(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

// Run runs the command line args (args[0] is the program name) and returns
// the exit status: 0 success, 1 failure, 2 usage error.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = eofReader{}
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	app := newApp(env)
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return 0
	}
	fmt.Fprintf(env.Stderr, "entrepot: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// app holds what every command needs.
type app struct {
	env Env
}

func newApp(env Env) *ucli.App {
	a := &app{env: env}
	return &ucli.App{
		Name:                 "entrepot",
		Usage:                "a self-hosted S3-compatible object store",
		Version:              Version(),
		Reader:               env.Stdin,
		Writer:               env.Stdout,
		ErrWriter:            env.Stderr,
		EnableBashCompletion: true,
		HideVersion:          true,
		ExitErrHandler:       func(*ucli.Context, error) {}, // Run reports errors; never os.Exit here
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "config `FILE` (server default /etc/entrepot/entrepot.toml)"},
			&ucli.StringFlag{Name: "admin-socket", Usage: "admin API unix socket `PATH` [$ENTREPOT_ADMIN_SOCKET]"},
			&ucli.StringFlag{Name: "admin-url", Usage: "admin API `URL` over TCP, e.g. http://127.0.0.1:3903 [$ENTREPOT_ADMIN_URL]"},
			&ucli.StringFlag{Name: "admin-token-file", Usage: "`FILE` holding the admin token for --admin-url (or set $ENTREPOT_ADMIN_TOKEN)"},
			&ucli.StringFlag{Name: "data-dir", Usage: "dev directory `DIR`: the admin socket is DIR/admin.sock"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON instead of tables"},
		},
		Commands: []*ucli.Command{
			a.serverCommand(),
			a.keyCommand(),
			a.bucketCommand(),
			a.statusCommand(),
			a.nodeCommand(),
			a.layoutCommand(),
			a.repairCommand(),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *ucli.Context) error {
					fmt.Fprintf(env.Stdout, "entrepot %s (%s %s/%s)\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
					return nil
				},
			},
		},
	}
}

// lookupString returns the innermost non-empty value of a flag defined on
// several levels (e.g. `entrepot -c X server` and `entrepot server -c X`).
func lookupString(c *ucli.Context, name string) string {
	for _, cc := range c.Lineage() {
		if v := cc.String(name); v != "" {
			return v
		}
	}
	return ""
}

// lookupBool is true if the flag is set on any level.
func lookupBool(c *ucli.Context, name string) bool {
	for _, cc := range c.Lineage() {
		if cc.Bool(name) {
			return true
		}
	}
	return false
}

// jsonFlag is the per-command --json (the global one works too).
func jsonFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}
}
