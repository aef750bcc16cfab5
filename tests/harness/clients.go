package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// NewTransport returns an http.Transport for loopback tests and benches:
// maxConns idle connections per host, no proxy from the environment.
func NewTransport(maxConns int) *http.Transport {
	if maxConns < 2 {
		maxConns = 2
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          maxConns * 2,
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
	}
}

// NewS3Client returns an aws-sdk-go-v2 S3 client for endpoint with path-style
// addressing and the SDK's default checksum behaviour made explicit
// (CRC32 on every upload, response validation when supported). It never
// reads the machine's shared config or AWS_* variables. httpClient nil uses
// a fresh loopback transport. optFns adjust the client further.
func NewS3Client(endpoint string, c Credentials, httpClient *http.Client, optFns ...func(*s3.Options)) *s3.Client {
	if httpClient == nil {
		httpClient = &http.Client{Transport: NewTransport(16)}
	}
	cfg := aws.Config{
		Region:                     c.Region,
		Credentials:                awscreds.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, ""),
		HTTPClient:                 httpClient,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}
	fns := append([]func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	}}, optFns...)
	return s3.NewFromConfig(cfg, fns...)
}

// NewMinioClient returns a minio-go client for endpoint (http or https URL)
// with path-style lookup. Over http minio-go signs uploads as
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunks; over https with trailers it
// sends STREAMING-UNSIGNED-PAYLOAD-TRAILER.
func NewMinioClient(endpoint string, c Credentials, tr http.RoundTripper, trailers bool) (*minio.Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("parse endpoint: %w", err)
	}
	if tr == nil {
		tr = NewTransport(16)
	}
	cl, err := minio.New(u.Host, &minio.Options{
		Creds:           miniocreds.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, ""),
		Secure:          u.Scheme == "https",
		Region:          c.Region,
		BucketLookup:    minio.BucketLookupPath,
		Transport:       tr,
		TrailingHeaders: trailers,
	})
	if err != nil {
		return nil, fmt.Errorf("new minio client: %w", err)
	}
	return cl, nil
}

// S3 returns an aws-sdk-go-v2 client for the cluster's first node.
func S3(c Cluster, optFns ...func(*s3.Options)) *s3.Client {
	return NewS3Client(c.Node(0).Endpoint(), c.Credentials(), nil, optFns...)
}

// Minio returns a minio-go client for the cluster's first node.
func Minio(c Cluster) (*minio.Client, error) {
	return NewMinioClient(c.Node(0).Endpoint(), c.Credentials(), nil, false)
}

// ClientEnv is a clean environment for an external client: HOME is a fresh
// directory, AWS config files point inside it, no AWS_* variable is
// inherited, PATH holds only the system directories (so pyenv shims do not
// shadow Debian's tools).
type ClientEnv struct {
	Home string
	Env  []string
}

// NewClientEnv writes HOME/.aws/{config,credentials} for c and endpoint
// (profile "default", path-style) and returns the environment.
func NewClientEnv(home string, c Credentials, endpoint string) (*ClientEnv, error) {
	awsDir := filepath.Join(home, ".aws")
	tmp := filepath.Join(home, "tmp")
	for _, d := range []string{awsDir, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("make client home: %w", err)
		}
	}
	config := fmt.Sprintf("[default]\nregion = %s\nendpoint_url = %s\ns3 =\n    addressing_style = path\n", c.Region, endpoint)
	credsFile := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", c.AccessKeyID, c.SecretAccessKey)
	if err := os.WriteFile(filepath.Join(awsDir, "config"), []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("write aws config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(awsDir, "credentials"), []byte(credsFile), 0o600); err != nil {
		return nil, fmt.Errorf("write aws credentials: %w", err)
	}
	env := []string{
		"HOME=" + home,
		"PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin",
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"TMPDIR=" + tmp,
		"AWS_CONFIG_FILE=" + filepath.Join(awsDir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(awsDir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"NO_PROXY=127.0.0.1,localhost",
	}
	return &ClientEnv{Home: home, Env: env}, nil
}

// WaitS3 polls ListBuckets until it succeeds or ctx ends; it returns the
// time of the first success.
func WaitS3(ctx context.Context, cl *s3.Client) (time.Time, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cl.ListBuckets(cctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait for S3: %w (last: %v)", ctx.Err(), err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
