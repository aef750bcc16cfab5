package model

// SSECInfo marks an object (or a multipart upload) stored with a
// customer-provided key (SSE-C). The data in the blocks is ciphertext; the
// S3 layer owns the scheme (see daemon/s3/ssec.go) and identifies it by V.
// Neither the key nor anything derived from it that allows decryption is
// stored: only the salt and the key's MD5 (which AWS also keeps, to answer
// a wrong key with an error rather than garbage).
type SSECInfo struct {
	V      uint8  `json:"v"`    // scheme version
	Salt   []byte `json:"salt"` // random, per object or upload
	KeyMD5 string `json:"md5"`  // base64 MD5 of the customer key
}
