package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
)

func (a *app) keyCommand() *ucli.Command {
	permFlags := func() []ucli.Flag {
		return []ucli.Flag{
			&ucli.StringFlag{Name: "bucket", Usage: "bucket `NAME`", Required: true},
			&ucli.BoolFlag{Name: "read", Usage: "read objects"},
			&ucli.BoolFlag{Name: "write", Usage: "write and delete objects"},
			&ucli.BoolFlag{Name: "owner", Usage: "manage the bucket"},
			jsonFlag(),
		}
	}
	return &ucli.Command{
		Name:  "key",
		Usage: "manage access keys",
		Subcommands: []*ucli.Command{
			{
				Name:      "create",
				Usage:     "create an access key (prints its secret once)",
				ArgsUsage: "[NAME]",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "name", Usage: "key `NAME`"},
					&ucli.BoolFlag{Name: "can-create-bucket", Usage: "allow the key to create buckets"},
					jsonFlag(),
				},
				Action: a.keyCreate,
			},
			{
				Name:      "import",
				Usage:     "import an existing access key; the secret is read from stdin or --secret-file",
				ArgsUsage: "ACCESS_KEY_ID",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "name", Usage: "key `NAME`"},
					&ucli.StringFlag{Name: "secret-file", Usage: "read the secret from `FILE` instead of stdin"},
					&ucli.BoolFlag{Name: "can-create-bucket", Usage: "allow the key to create buckets"},
					jsonFlag(),
				},
				Action: a.keyImport,
			},
			{Name: "list", Usage: "list access keys", Flags: []ucli.Flag{jsonFlag()}, Action: a.keyList},
			{
				Name:      "info",
				Usage:     "show an access key and its bucket permissions",
				ArgsUsage: "KEY (id or name)",
				Flags:     []ucli.Flag{&ucli.BoolFlag{Name: "show-secret", Usage: "include the secret access key"}, jsonFlag()},
				Action:    a.keyInfo,
			},
			{Name: "delete", Usage: "delete an access key", ArgsUsage: "KEY", Flags: []ucli.Flag{jsonFlag()}, Action: a.keyDelete},
			{
				Name:      "set",
				Usage:     "change an access key's flags",
				ArgsUsage: "KEY",
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "can-create-bucket", Usage: "allow (--can-create-bucket) or forbid (--can-create-bucket=false) creating buckets"},
					jsonFlag(),
				},
				Action: a.keySet,
			},
			{Name: "allow", Usage: "grant a key permissions on a bucket", ArgsUsage: "KEY", Flags: permFlags(), Action: a.keyPerm(true)},
			{Name: "deny", Usage: "revoke a key's permissions on a bucket", ArgsUsage: "KEY", Flags: permFlags(), Action: a.keyPerm(false)},
		},
	}
}

// oneArg returns the single positional argument.
func oneArg(c *ucli.Context, what string) (string, error) {
	if c.NArg() != 1 || c.Args().First() == "" {
		return "", usageError("%s: expected exactly one %s, got %d arguments", c.Command.FullName(), what, c.NArg())
	}
	return c.Args().First(), nil
}

// keyText prints a key and its bucket permissions.
func keyText(w io.Writer, k admin.KeyInfo) error {
	kv := []string{"Key name", k.Name, "Key ID", k.AccessKeyID}
	if k.SecretAccessKey != "" {
		kv = append(kv, "Secret key", k.SecretAccessKey)
	}
	kv = append(kv, "Can create buckets", yesNo(k.CanCreateBucket), "Created", when(k.Created))
	if err := fields(w, kv...); err != nil {
		return err
	}
	if len(k.Buckets) == 0 {
		_, err := fmt.Fprintln(w, "\nNo bucket permissions.")
		return err
	}
	fmt.Fprintln(w)
	t := newTable(w, "BUCKET", "PERMISSIONS", "BUCKET ID")
	for _, b := range k.Buckets {
		name := b.Bucket
		if name == "" {
			name = "(deleted)"
		}
		t.row(name, perms(b.Read, b.Write, b.Owner), b.BucketID)
	}
	return t.flush()
}

func (a *app) keyCreate(c *ucli.Context) error {
	name := c.String("name")
	if c.NArg() > 1 || (c.NArg() == 1 && name != "") {
		return usageError("key create: give the name once, as an argument or with --name")
	}
	if c.NArg() == 1 {
		name = c.Args().First()
	}
	return show(a, c, func(cl *adminclient.Client) (admin.KeyInfo, error) {
		return cl.CreateKey(c.Context, admin.KeyCreateRequest{Name: name, CanCreateBucket: c.Bool("can-create-bucket")})
	}, keyText)
}

// readSecret reads the secret from a file or the first line of stdin.
func (a *app) readSecret(c *ucli.Context) (string, error) {
	var r io.Reader = a.env.Stdin
	if f, ok := r.(*os.File); ok && c.String("secret-file") == "" {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(a.env.Stderr, "Secret access key (one line): ")
		}
	}
	if f := c.String("secret-file"); f != "" {
		fh, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("read --secret-file: %w", err)
		}
		defer fh.Close()
		r = fh
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimSpace(line)
	if s == "" {
		return "", usageError("key import: no secret: pipe it on stdin or use --secret-file")
	}
	return s, nil
}

func (a *app) keyImport(c *ucli.Context) error {
	id, err := oneArg(c, "access key id")
	if err != nil {
		return err
	}
	secret, err := a.readSecret(c)
	if err != nil {
		return err
	}
	return show(a, c, func(cl *adminclient.Client) (admin.KeyInfo, error) {
		return cl.ImportKey(c.Context, admin.KeyImportRequest{AccessKeyID: id, SecretAccessKey: secret, Name: c.String("name"), CanCreateBucket: c.Bool("can-create-bucket")})
	}, keyText)
}

func (a *app) keyList(c *ucli.Context) error {
	return show(a, c, func(cl *adminclient.Client) (admin.KeyList, error) {
		keys, err := cl.ListKeys(c.Context)
		return admin.KeyList{Keys: keys}, err
	}, func(w io.Writer, l admin.KeyList) error {
		t := newTable(w, "ID", "NAME", "CREATE BUCKETS", "BUCKETS", "CREATED")
		for _, k := range l.Keys {
			t.row(k.AccessKeyID, k.Name, yesNo(k.CanCreateBucket), fmt.Sprint(len(k.Buckets)), when(k.Created))
		}
		return t.flush()
	})
}

func (a *app) keyInfo(c *ucli.Context) error {
	ref, err := oneArg(c, "key id or name")
	if err != nil {
		return err
	}
	return show(a, c, func(cl *adminclient.Client) (admin.KeyInfo, error) {
		return cl.KeyInfo(c.Context, ref, c.Bool("show-secret"))
	}, keyText)
}

func (a *app) keyDelete(c *ucli.Context) error {
	ref, err := oneArg(c, "key id or name")
	if err != nil {
		return err
	}
	return show(a, c, func(cl *adminclient.Client) (admin.KeyInfo, error) {
		return cl.DeleteKey(c.Context, ref)
	}, func(w io.Writer, k admin.KeyInfo) error {
		_, err := fmt.Fprintf(w, "Deleted key %s (%s).\n", k.AccessKeyID, k.Name)
		return err
	})
}

func (a *app) keySet(c *ucli.Context) error {
	ref, err := oneArg(c, "key id or name")
	if err != nil {
		return err
	}
	if !c.IsSet("can-create-bucket") {
		return usageError("key set: nothing to change; give --can-create-bucket or --can-create-bucket=false")
	}
	v := c.Bool("can-create-bucket")
	return show(a, c, func(cl *adminclient.Client) (admin.KeyInfo, error) {
		return cl.SetKey(c.Context, admin.KeySetRequest{Key: ref, CanCreateBucket: &v})
	}, keyText)
}

func (a *app) keyPerm(grant bool) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		ref, err := oneArg(c, "key id or name")
		if err != nil {
			return err
		}
		return a.changePerm(c, grant, ref, c.String("bucket"))
	}
}

func (a *app) changePerm(c *ucli.Context, grant bool, key, bucket string) error {
	req := admin.PermissionRequest{Key: key, Bucket: bucket, Read: c.Bool("read"), Write: c.Bool("write"), Owner: c.Bool("owner")}
	if !req.Read && !req.Write && !req.Owner {
		return usageError("%s: give at least one of --read, --write, --owner", c.Command.FullName())
	}
	return show(a, c, func(cl *adminclient.Client) (admin.KeyInfo, error) {
		if !grant {
			return cl.Deny(c.Context, req)
		}
		return cl.Allow(c.Context, req)
	}, keyText)
}
