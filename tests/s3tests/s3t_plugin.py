"""pytest plugin for running ceph/s3-tests against entrepot (see README.md).

Loaded with ``-p s3t_plugin`` (this directory on PYTHONPATH, the s3-tests
checkout as the working directory). It does three things, none of which
changes what a test asserts:

1. Classifies every collected test into a *group*: an S3 feature the test
   needs (acl, versioning, sse_c, ...) when its body, or a helper it calls,
   uses that feature, else the API area its name belongs to (list_v1,
   multipart, copy, ...).
2. Selects a *set* of groups (``--s3t-set``): ``issue2`` (the features of
   entrepot issue 2), ``garage`` (the anchor's "Garage feature set": only
   versioning, object lock, ACL/policy, tagging, lifecycle, logging and
   SSE-S3/KMS left out) or ``all``. Deselected tests are not run.
3. Replaces the suite's per-test bucket cleanup. The stock cleanup lists
   buckets by prefix, empties them with ListObjectVersions and raises on the
   first failure, so one undeletable bucket (or a server without
   ListObjectVersions) turns every later test into an error. Here a bucket
   that the stock cleanup cannot empty is emptied with ListObjectsV2 and
   AbortMultipartUpload; if even that fails, the run switches to a fresh
   bucket prefix and records the failure in ``--s3t-cleanup-log`` instead of
   raising.

It writes ``--s3t-groups`` (JSON: test id -> group, markers) for
summarize.py.
"""

import ast
import json
import os
import re
import sys

import pytest

# Feature detectors, matched against the source of a test and of every
# module-level helper it calls (transitively). Order is priority: the first
# feature found names the group.
FEATURES = [
    ("logging", r"bucket_logging|BucketLoggingStatus"),
    ("lifecycle", r"lifecycle|restore_object|RestoreRequest"),
    ("object_lock", r"ObjectLock|object_lock|_retention\(|legal_hold|LegalHold|BypassGovernance"),
    ("versioning", r"put_bucket_versioning|check_configure_versioning|list_object_versions|VersionId="),
    ("cors", r"_bucket_cors\(|CORSConfiguration|Access-Control-Request"),
    ("website", r"_bucket_website\("),
    ("post_object", r"requests\.post\("),
    ("sse_c", r"SSECustomer|server-side-encryption-customer"),
    ("sse_s3_kms", r"ServerSideEncryption=|x-amz-server-side-encryption'|aws-kms|_bucket_encryption\(|kms_keyid"),
    ("tagging", r"_tagging\(|Tagging=|TaggingDirective|x-amz-tagging"),
    ("ownership", r"OwnershipControls|ObjectOwnership|_ownership_controls\("),
    ("policy", r"_bucket_policy\(|public_access_block|PublicAccessBlock|policy_status"),
    ("acl", r"ACL=|_acl\(|\bGrant[A-Z]|AccessControlPolicy|x-amz-grant|x-amz-acl"),
    ("sigv2", r"get_v2_client|get_v2_tenant_client|signature_version='s3'\)"),
    ("tenant", r"get_tenant_client|get_tenant_iam_client|tenant_name"),
    ("iam_sts", r"get_iam_|get_sts_|iam_root|create_iam_user"),
    ("object_attributes", r"get_object_attributes"),
    ("storage_class", r"StorageClass="),
    ("select", r"select_object_content"),
]

# Helpers that take a feature only as an optional argument (tags, a version
# id, attributes checks): calling them does not make a test need it.
NO_PROPAGATE = {"_multipart_upload", "multipart_checksum_3parts_helper", "_check_key_content"}

# Name rules for tests whose body does not reveal the feature (and for the
# API-area groups). First match wins; applied after the feature detectors
# for the excluded features, before them never.
NAME_FEATURES = [
    ("object_lock", r"object_lock|retention|legal_hold"),
    ("versioning", r"versioning|versioned|delete_marker|_version_if_match"),
    ("acl", r"_acl|access_bucket|public_block|block_public|publicread|_public\b|public_acl"),
    ("policy", r"polic"),
    ("ownership", r"ownership|bucket_owner"),
    ("tagging", r"_tags|tagging"),
    ("lifecycle", r"lifecycle|restore|read_through|transition|cloud"),
    ("logging", r"logging"),
    ("sse_c", r"sse_c|_enc\b|_enc\[|encryption_key_no_sse_c"),
    ("sse_s3_kms", r"sse_kms|sse_s3|encryption|encrypted|_enc_"),
    ("cors", r"cors"),
    ("website", r"website"),
    ("post_object", r"post_object"),
    ("sigv2", r"aws2"),
    ("tenant", r"tenant"),
    ("rgw_usage", r"account_usage|bucket_usage"),
    ("object_attributes", r"object_attributes"),
    ("torrent", r"torrent"),
    ("append", r"append"),
    ("select", r"select"),
    ("get_part_number", r"get_part\b|get_part$|_get_part_"),
    ("conditional_delete", r"^test_delete_objects?_(current_)?if_match"),
]

# API areas (groups inside the feature set), by test name.
AREAS = [
    ("checksum", r"checksum|cksum|crc32|crc64|sha256|sha1"),
    ("conditional_put", r"put_object_if|put_current_object_if|put_object_current_if|multipart_put_.*if_|atomic_conditional|atomic_dual_conditional"),
    ("conditional_get", r"get_object_if|copy_object_if"),
    ("copy", r"copy"),
    ("multipart", r"multipart|upload_part|_part_"),
    ("list_v2", r"listv2|list_objects_v2|bucketv2|basic_key_count"),
    ("list_v1", r"bucket_list|list_return|list_many|list_objects"),
    ("list_buckets", r"list_buckets|buckets_list|buckets_create_then_list"),
    ("bucket_naming", r"bucket_create_naming|create_bucket_naming"),
    ("bucket", r"bucket_create|bucket_delete|bucket_head|bucket_notexist|bucket_recreate|get_location|bucket_get_location|create_bucket|delete_bucket|rm_bucket"),
    ("delete_objects", r"multi_object|delete_objects"),
    ("presigned_raw", r"raw_|presigned|x_amz_expires"),
    ("ranged", r"range"),
    ("metadata_headers", r"metadata|cache_control|expires|content_encoding|contenttype|response_headers|header"),
    ("auth", r"auth|bad_date|bad_ua|amz_date|_date_|anon|anonymous|bad_md5|unreadable|requestid"),
    ("atomic", r"atomic"),
    ("expect_100", r"100_continue|expect"),
    ("object", r"object|obj_|put_|get_|write|read|delete"),
]

# Groups each set leaves out.
EXCLUDE = {
    "all": set(),
    "garage": {"object_lock", "versioning", "acl", "policy", "ownership", "tagging",
               "lifecycle", "logging", "sse_s3_kms", "iam_sts", "tenant"},
    "issue2": {"object_lock", "versioning", "acl", "policy", "ownership", "tagging",
               "lifecycle", "logging", "sse_s3_kms", "sse_c", "cors", "website",
               "post_object", "sigv2", "tenant", "iam_sts", "rgw_usage",
               "object_attributes", "storage_class", "torrent", "append", "select",
               "get_part_number", "conditional_delete"},
}

TEST_FILES = ("test_s3.py", "test_headers.py")


class _Analyzer:
    """Per-module map: function name -> features used, directly or via calls."""

    def __init__(self):
        self._cache = {}

    def features(self, path, func):
        if path not in self._cache:
            self._cache[path] = self._analyze(path)
        return self._cache[path].get(func, [])

    @staticmethod
    def _analyze(path):
        with open(path, encoding="utf-8") as f:
            src = f.read()
        tree = ast.parse(src)
        funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        lines = src.splitlines()
        direct, calls = {}, {}
        compiled = [(name, re.compile(rx)) for name, rx in FEATURES]
        for name, node in funcs.items():
            seg = "\n".join(lines[node.lineno - 1:node.end_lineno])
            direct[name] = {feat for feat, rx in compiled if rx.search(seg)}
            calls[name] = {c.func.id for c in ast.walk(node)
                           if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in funcs}
        out = {}
        for name in funcs:
            seen, todo, feats = set(), [name], set()
            while todo:
                n = todo.pop()
                if n in seen:
                    continue
                seen.add(n)
                if n != name and n in NO_PROPAGATE:
                    continue
                feats |= direct.get(n, set())
                todo.extend(calls.get(n, ()))
            out[name] = [feat for feat, _ in FEATURES if feat in feats]
        return out


def classify(name, body_features):
    """Group of a test from its function name and the features its code uses."""
    if body_features:
        return body_features[0]
    for group, rx in NAME_FEATURES:
        if re.search(rx, name):
            return group
    for group, rx in AREAS:
        if re.search(rx, name):
            return group
    return "other"


def pytest_addoption(parser):
    g = parser.getgroup("s3t", "entrepot s3-tests runner")
    g.addoption("--s3t-set", default="issue2", choices=sorted(EXCLUDE),
                help="which tests to run: issue2 (default), garage, all")
    g.addoption("--s3t-groups", default=None, help="write the test -> group map (JSON) here")
    g.addoption("--s3t-cleanup-log", default=None, help="append cleanup failures (JSON lines) here")
    g.addoption("--s3t-only-group", default=None,
                help="comma-separated groups: run only these (after --s3t-set)")


def pytest_configure(config):
    _patch_cleanup(config.getoption("--s3t-cleanup-log"))


def pytest_collection_modifyitems(session, config, items):
    chosen = config.getoption("--s3t-set")
    only = config.getoption("--s3t-only-group")
    only = set(only.split(",")) if only else None
    analyzer = _Analyzer()
    keep, drop, table = [], [], {}
    for item in items:
        path = str(item.fspath)
        base = os.path.basename(path)
        func = getattr(item, "originalname", None) or item.name.split("[")[0]
        if base not in TEST_FILES:
            group = "other_file"
        else:
            group = classify(func, analyzer.features(path, func))
            # Parametrized encryption tests (test_copy_enc[sse-c-sse-kms-...])
            # need SSE-S3/KMS when a parameter names it.
            params = item.name[len(func):]
            if group == "sse_c" and re.search(r"sse-kms|sse-s3", params):
                group = "sse_s3_kms"
        markers = sorted({m.name for m in item.iter_markers()} - {"parametrize"})
        table[item.nodeid] = {"group": group, "markers": markers}
        selected = (base in TEST_FILES and group not in EXCLUDE[chosen]
                    and (only is None or group in only))
        (keep if selected else drop).append(item)
        table[item.nodeid]["selected"] = selected
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    out = config.getoption("--s3t-groups")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(table, f, indent=1, sort_keys=True)


def _patch_cleanup(log_path):
    """Swap s3tests.functional's setup/teardown for the tolerant version."""
    try:
        import s3tests.functional as F
    except Exception as e:  # not run from an s3-tests checkout
        sys.stderr.write("s3t_plugin: cannot import s3tests.functional: %s\n" % e)
        return

    stock_nuke_bucket = F.nuke_bucket
    template = "s3t-{random}-"

    def plain_empty(client, bucket):
        # Unversioned emptying: objects, then in-progress multipart uploads.
        token = None
        while True:
            kw = {"Bucket": bucket, "MaxKeys": 500}
            if token:
                kw["ContinuationToken"] = token
            page = client.list_objects_v2(**kw)
            objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objs:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
        for _ in range(100):
            up = client.list_multipart_uploads(Bucket=bucket)
            for u in up.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
            if not up.get("IsTruncated"):
                break
        client.delete_bucket(Bucket=bucket)

    def nuke_one(client, bucket):
        try:
            stock_nuke_bucket(client, bucket)
            return
        except Exception:
            pass
        plain_empty(client, bucket)

    def tolerant_nuke_prefixed(prefix, client=None):
        """Returns the list of (bucket, error) that could not be removed."""
        if client is None:
            client = F.get_client()
        failed = []
        try:
            names = F.get_buckets_list(client, prefix)
        except Exception as e:
            return [("<ListBuckets>", e)]
        for b in names:
            try:
                nuke_one(client, b)
            except Exception as e:
                failed.append((b, e))
        return failed

    def record(phase, failed):
        if not failed:
            return
        old = F.prefix
        F.prefix = F.choose_bucket_prefix(template=template)
        if log_path:
            with open(log_path, "a", encoding="utf-8") as f:
                for bucket, err in failed:
                    f.write(json.dumps({
                        "test": os.environ.get("PYTEST_CURRENT_TEST", ""),
                        "phase": phase, "bucket": bucket, "error": repr(err)[:500],
                        "old_prefix": old, "new_prefix": F.prefix}) + "\n")

    def all_clients():
        return [F.get_client(), F.get_alt_client(), F.get_tenant_client()]

    def setup():
        failed = []
        for c in all_clients():
            failed += tolerant_nuke_prefixed(F.prefix, client=c)
        record("setup", failed)

    def teardown():
        failed = []
        for c in all_clients():
            failed += tolerant_nuke_prefixed(F.prefix, client=c)
        record("teardown", failed)

    def nuke_prefixed_buckets(prefix, client=None):
        # Used directly by a few fixtures in test_s3.py (prefixes 'a'+p, '0'+p).
        failed = tolerant_nuke_prefixed(prefix, client=client)
        record("fixture", failed)

    F.setup = setup
    F.teardown = teardown
    F.nuke_prefixed_buckets = nuke_prefixed_buckets
