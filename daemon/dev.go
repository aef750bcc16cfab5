package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/entrepot/entrepot/daemon/config"
	"github.com/entrepot/entrepot/daemon/model"
)

// DevCredentialsFile is the file, in the dev directory, holding the dev key.
const DevCredentialsFile = "dev-credentials.json"

// DevKeyName is the name of the access key dev mode creates.
const DevKeyName = "dev"

// DevCredentials is the content of dev-credentials.json.
type DevCredentials struct {
	Endpoint        string `json:"endpoint"`
	Region          string `json:"region"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// devKeyStore is what dev mode needs from the store.
type devKeyStore interface {
	GetKey(ctx context.Context, accessKeyID string) (model.Key, error)
	CreateKey(ctx context.Context, name string) (model.Key, error)
	ImportKey(ctx context.Context, id, secret, name string) (model.Key, error)
	ListKeys(ctx context.Context) ([]model.Key, error)
	SetKeyCanCreateBucket(ctx context.Context, accessKeyID string, allow bool) error
}

// ensureDevKey returns the dev credentials, creating the key on first start.
// The key in dev-credentials.json wins: if the store lost it (data wiped),
// it is imported again so clients configured earlier keep working. The file
// is rewritten on every start with the current endpoint.
func ensureDevKey(ctx context.Context, st devKeyStore, dir, endpoint, region string) (DevCredentials, error) {
	path := filepath.Join(dir, DevCredentialsFile)
	var key model.Key
	prev, err := readDevCredentials(path)
	switch {
	case err == nil:
		key, err = st.GetKey(ctx, prev.AccessKeyID)
		if errors.Is(err, model.ErrNoSuchAccessKey) {
			key, err = st.ImportKey(ctx, prev.AccessKeyID, prev.SecretAccessKey, DevKeyName)
		}
		if err != nil {
			return DevCredentials{}, fmt.Errorf("dev key from %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		key, err = findOrCreateDevKey(ctx, st)
		if err != nil {
			return DevCredentials{}, err
		}
	default:
		return DevCredentials{}, err
	}
	if !key.CanCreateBucket {
		if err := st.SetKeyCanCreateBucket(ctx, key.ID, true); err != nil {
			return DevCredentials{}, fmt.Errorf("allow dev key to create buckets: %w", err)
		}
	}
	dc := DevCredentials{Endpoint: endpoint, Region: region, AccessKeyID: key.ID, SecretAccessKey: key.Secret}
	if err := writeDevCredentials(path, dc); err != nil {
		return DevCredentials{}, err
	}
	return dc, nil
}

// findOrCreateDevKey reuses a key named "dev" (credentials file deleted) or creates one.
func findOrCreateDevKey(ctx context.Context, st devKeyStore) (model.Key, error) {
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return model.Key{}, fmt.Errorf("list keys: %w", err)
	}
	for _, k := range keys {
		if k.Name == DevKeyName {
			full, err := st.GetKey(ctx, k.ID)
			if err != nil {
				return model.Key{}, fmt.Errorf("get dev key: %w", err)
			}
			return full, nil
		}
	}
	k, err := st.CreateKey(ctx, DevKeyName)
	if err != nil {
		return model.Key{}, fmt.Errorf("create dev key: %w", err)
	}
	return k, nil
}

func readDevCredentials(path string) (DevCredentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return DevCredentials{}, fmt.Errorf("read dev credentials: %w", err)
	}
	var dc DevCredentials
	if err := json.Unmarshal(b, &dc); err != nil || dc.AccessKeyID == "" || dc.SecretAccessKey == "" {
		return DevCredentials{}, fmt.Errorf("dev credentials %s are damaged (delete the file to get a new key): %w", path, model.ErrInvalidArgument)
	}
	return dc, nil
}

// writeDevCredentials writes the file with mode 0600, atomically.
func writeDevCredentials(path string, dc DevCredentials) error {
	b, err := json.MarshalIndent(dc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode dev credentials: %w", err)
	}
	b = append(b, '\n')
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write dev credentials: %w", err)
	}
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o600)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write dev credentials: %w", werr)
	}
	return nil
}

// printDevBanner shows how to use the dev node. The secret goes to w (the
// terminal), never to the log.
func printDevBanner(w io.Writer, dc DevCredentials, cfg config.Config) {
	fmt.Fprintf(w, `
entrepot dev node is ready (single node, replication 1, data in %s)

  S3 endpoint        %s
  region             %s
  access key id      %s
  secret access key  %s
  credentials file   %s

aws cli:
  aws configure set aws_access_key_id %s
  aws configure set aws_secret_access_key %s
  aws configure set region %s
  aws --endpoint-url %s s3 mb s3://my-bucket

rclone:
  rclone config create entrepot s3 provider Other env_auth false \
    access_key_id %s secret_access_key %s \
    endpoint %s region %s
  rclone lsd entrepot:

admin: entrepot --admin-socket %s status
`, cfg.DevDir, dc.Endpoint, dc.Region, dc.AccessKeyID, dc.SecretAccessKey, filepath.Join(cfg.DevDir, DevCredentialsFile),
		dc.AccessKeyID, dc.SecretAccessKey, dc.Region, dc.Endpoint,
		dc.AccessKeyID, dc.SecretAccessKey, dc.Endpoint, dc.Region,
		cfg.Admin.Socket)
}
