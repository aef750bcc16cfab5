package cli

import (
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v2"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
)

func (a *app) bucketCommand() *ucli.Command {
	permFlags := func() []ucli.Flag {
		return []ucli.Flag{
			&ucli.StringFlag{Name: "key", Usage: "access key id or name `KEY`", Required: true},
			&ucli.BoolFlag{Name: "read", Usage: "read objects"},
			&ucli.BoolFlag{Name: "write", Usage: "write and delete objects"},
			&ucli.BoolFlag{Name: "owner", Usage: "manage the bucket"},
			jsonFlag(),
		}
	}
	return &ucli.Command{
		Name:  "bucket",
		Usage: "manage buckets",
		Subcommands: append([]*ucli.Command{
			{
				Name:      "create",
				Usage:     "create a bucket",
				ArgsUsage: "NAME",
				Flags:     []ucli.Flag{&ucli.StringFlag{Name: "owner", Usage: "give `KEY` read, write and owner permissions"}, jsonFlag()},
				Action:    a.bucketCreate,
			},
			{Name: "delete", Usage: "delete an empty bucket", ArgsUsage: "NAME", Flags: []ucli.Flag{jsonFlag()}, Action: a.bucketDelete},
			{Name: "list", Usage: "list buckets", Flags: []ucli.Flag{jsonFlag()}, Action: a.bucketList},
			{Name: "info", Usage: "show a bucket, its usage and its keys", ArgsUsage: "NAME", Flags: []ucli.Flag{jsonFlag()}, Action: a.bucketInfo},
			{Name: "allow", Usage: "grant a key permissions on the bucket", ArgsUsage: "NAME", Flags: permFlags(), Action: a.bucketPerm(true)},
			{Name: "deny", Usage: "revoke a key's permissions on the bucket", ArgsUsage: "NAME", Flags: permFlags(), Action: a.bucketPerm(false)},
		}, a.bucketConfigCommands()...), // bucketconfig.go
	}
}

func (a *app) bucketCreate(c *ucli.Context) error {
	name, err := oneArg(c, "bucket name")
	if err != nil {
		return err
	}
	return show(a, c, func(cl *adminclient.Client) (admin.BucketInfo, error) {
		return cl.CreateBucket(c.Context, admin.BucketCreateRequest{Name: name, Owner: c.String("owner")})
	}, func(w io.Writer, b admin.BucketInfo) error {
		_, err := fmt.Fprintf(w, "Created bucket %s (id %s).\n", b.Name, b.ID)
		return err
	})
}

func (a *app) bucketDelete(c *ucli.Context) error {
	name, err := oneArg(c, "bucket name")
	if err != nil {
		return err
	}
	return show(a, c, func(cl *adminclient.Client) (admin.BucketRef, error) {
		return admin.BucketRef{Bucket: name}, cl.DeleteBucket(c.Context, name)
	}, func(w io.Writer, b admin.BucketRef) error {
		_, err := fmt.Fprintf(w, "Deleted bucket %s.\n", b.Bucket)
		return err
	})
}

func (a *app) bucketList(c *ucli.Context) error {
	return show(a, c, func(cl *adminclient.Client) (admin.BucketList, error) {
		bs, err := cl.ListBuckets(c.Context)
		return admin.BucketList{Buckets: bs}, err
	}, func(w io.Writer, l admin.BucketList) error {
		t := newTable(w, "NAME", "ID", "OWNER", "CREATED")
		for _, b := range l.Buckets {
			t.row(b.Name, b.ID, ownerOrDash(b.Owner), when(b.Created))
		}
		return t.flush()
	})
}

func (a *app) bucketInfo(c *ucli.Context) error {
	name, err := oneArg(c, "bucket name")
	if err != nil {
		return err
	}
	return show(a, c, func(cl *adminclient.Client) (admin.BucketInfo, error) {
		return cl.BucketInfo(c.Context, name)
	}, bucketText)
}

// ownerOrDash is a bucket's owner key, or "-" when it has none.
func ownerOrDash(owner string) string {
	if owner == "" {
		return "-"
	}
	return owner
}

// bucketText prints a bucket, its usage and the keys' permissions on it.
func bucketText(w io.Writer, b admin.BucketInfo) error {
	kv := []string{"Bucket", b.Name, "ID", b.ID, "Owner", ownerOrDash(b.Owner), "Created", when(b.Created)}
	if b.Stats != nil {
		kv = append(kv, "Objects", fmt.Sprint(b.Stats.Objects),
			"Size", fmt.Sprintf("%s (%d bytes)", humanBytes(b.Stats.Bytes), b.Stats.Bytes),
			"Unfinished uploads", fmt.Sprint(b.Stats.UnfinishedUploads))
	}
	if err := fields(w, kv...); err != nil {
		return err
	}
	if len(b.Keys) == 0 {
		_, err := fmt.Fprintln(w, "\nNo key has permissions on this bucket.")
		return err
	}
	fmt.Fprintln(w)
	t := newTable(w, "KEY ID", "NAME", "PERMISSIONS")
	for _, k := range b.Keys {
		t.row(k.AccessKeyID, k.Name, perms(k.Read, k.Write, k.Owner))
	}
	return t.flush()
}

func (a *app) bucketPerm(grant bool) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		name, err := oneArg(c, "bucket name")
		if err != nil {
			return err
		}
		return a.changePerm(c, grant, c.String("key"), name)
	}
}
