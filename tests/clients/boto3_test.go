package clients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pythonBin = "/usr/bin/python3"

// boto3Script exercises presigned GET/PUT and multipart upload_file /
// download_file with a small threshold; it prints OK on success.
const boto3Script = `
import faulthandler, hashlib, os, sys, urllib.request
faulthandler.dump_traceback_later(150, exit=True)  # show where it hangs, before the Go timeout
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint, bucket, work = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", endpoint_url=endpoint,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()

s3.create_bucket(Bucket=bucket)
assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]], "bucket not listed"

# presigned PUT then presigned GET
data = os.urandom(100000)
put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned.bin"}, ExpiresIn=300)
req = urllib.request.Request(put_url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
with urllib.request.urlopen(req, timeout=60) as r:
    assert r.status == 200, r.status
get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned.bin"}, ExpiresIn=300)
with urllib.request.urlopen(get_url, timeout=60) as r:
    got = r.read()
assert got == data, "presigned GET returned other bytes (%d vs %d)" % (len(got), len(data))

# multipart through the transfer manager
cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=4)
src = os.path.join(work, "src.bin")
with open(src, "wb") as f:
    f.write(os.urandom(13 * 1024 * 1024 + 7))
s3.upload_file(src, bucket, "mp/src.bin", Config=cfg)
head = s3.head_object(Bucket=bucket, Key="mp/src.bin")
assert head["ContentLength"] == 13 * 1024 * 1024 + 7, head["ContentLength"]
assert head["ETag"].endswith('-3"'), "multipart ETag " + head["ETag"]
dst = os.path.join(work, "dst.bin")
s3.download_file(bucket, "mp/src.bin", dst, Config=TransferConfig(multipart_threshold=4 * 1024 * 1024, multipart_chunksize=4 * 1024 * 1024))
assert sha(src) == sha(dst), "multipart round trip differs"

# plain put/get/list/delete
s3.put_object(Bucket=bucket, Key="small.txt", Body=b"hello boto3", Metadata={"k": "v"})
o = s3.get_object(Bucket=bucket, Key="small.txt")
assert o["Body"].read() == b"hello boto3" and o["Metadata"]["k"] == "v"
keys = [c["Key"] for c in s3.list_objects_v2(Bucket=bucket)["Contents"]]
assert keys == ["mp/src.bin", "presigned.bin", "small.txt"], keys
r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
assert len(r.get("Deleted", [])) == 3 and not r.get("Errors"), r
assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
s3.delete_bucket(Bucket=bucket)
print("OK")
`

func TestBoto3(t *testing.T) {
	requireTool(t, pythonBin)
	env := clientEnv(t)
	if _, err := tryRun(env.Env, t.TempDir(), 30*time.Second, pythonBin, "-c", "import boto3"); err != nil {
		requireTool(t, "/usr/lib/python3/dist-packages/boto3/__init__.py")
	}
	t.Parallel()
	work := t.TempDir()
	script := filepath.Join(work, "boto3_e2e.py")
	if err := os.WriteFile(script, []byte(boto3Script), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, env.Env, work, 3*time.Minute, pythonBin, script, cluster.Node(0).Endpoint(), bucketName(t), work)
	if strings.TrimSpace(out) != "OK" {
		t.Fatalf("boto3 script output %q, want OK", out)
	}
}
