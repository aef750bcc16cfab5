package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
)

func (a *app) bucketConfigCommands() []*ucli.Command {
	return []*ucli.Command{
		{
			Name:      "website",
			Usage:     "publish (--allow) or unpublish (--deny) a bucket on the website listener",
			ArgsUsage: "NAME",
			Flags: []ucli.Flag{
				&ucli.BoolFlag{Name: "allow", Usage: "serve the bucket as a website"},
				&ucli.BoolFlag{Name: "deny", Usage: "stop serving the bucket as a website"},
				&ucli.StringFlag{Name: "index-document", Usage: "index document `SUFFIX` (default index.html)"},
				&ucli.StringFlag{Name: "error-document", Usage: "object `KEY` served with 404 for missing pages"},
				jsonFlag(),
			},
			Action: a.bucketWebsite,
		},
		{
			Name:      "quota",
			Usage:     "set a bucket's quotas (0 removes a limit)",
			ArgsUsage: "NAME",
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "max-size", Usage: "maximum total `SIZE` (bytes, or with K, M, G, T suffix: powers of 1024)"},
				&ucli.StringFlag{Name: "max-objects", Usage: "maximum number of objects `N`"},
				jsonFlag(),
			},
			Action: a.bucketQuota,
		},
	}
}

func (a *app) bucketWebsite(c *ucli.Context) error {
	name, err := oneArg(c, "bucket name")
	if err != nil {
		return err
	}
	if c.Bool("allow") == c.Bool("deny") {
		return fmt.Errorf("give exactly one of --allow and --deny")
	}
	return show(a, c, func(cl *adminclient.Client) (admin.BucketConfigInfo, error) {
		return cl.SetBucketWebsite(c.Context, admin.WebsiteRequest{Bucket: name, Allow: c.Bool("allow"),
			IndexDocument: c.String("index-document"), ErrorDocument: c.String("error-document")})
	}, func(w io.Writer, info admin.BucketConfigInfo) error {
		if info.Website == nil {
			_, err := fmt.Fprintf(w, "Bucket %s is no longer served as a website.\n", name)
			return err
		}
		_, err := fmt.Fprintf(w, "Bucket %s is served as a website (index %s).\n", name, info.Website.IndexSuffix)
		return err
	})
}

// parseSize reads a byte count with an optional K, M, G or T suffix (1024-based; "KiB" etc. also accepted).
func parseSize(s string) (int64, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	v = strings.TrimSuffix(strings.TrimSuffix(v, "B"), "I")
	mult := int64(1)
	if v != "" {
		switch v[len(v)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			v = v[:len(v)-1]
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

func (a *app) bucketQuota(c *ucli.Context) error {
	name, err := oneArg(c, "bucket name")
	if err != nil {
		return err
	}
	req := admin.QuotaRequest{Bucket: name}
	if c.IsSet("max-size") {
		n, err := parseSize(c.String("max-size"))
		if err != nil {
			return err
		}
		req.MaxSize = &n
	}
	if c.IsSet("max-objects") {
		n, err := strconv.ParseInt(c.String("max-objects"), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid --max-objects %q", c.String("max-objects"))
		}
		req.MaxObjects = &n
	}
	if req.MaxSize == nil && req.MaxObjects == nil {
		return fmt.Errorf("give --max-size and/or --max-objects")
	}
	return show(a, c, func(cl *adminclient.Client) (admin.BucketConfigInfo, error) {
		return cl.SetBucketQuota(c.Context, req)
	}, func(w io.Writer, info admin.BucketConfigInfo) error {
		_, err := fmt.Fprintf(w, "Bucket %s quotas: max size %s, max objects %s.\n", name,
			limitString(info.Quota.MaxSize), limitString(info.Quota.MaxObjects))
		return err
	})
}

func limitString(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}
