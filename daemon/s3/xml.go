package s3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// xmlNS is the S3 document namespace.
const xmlNS = "http://s3.amazonaws.com/doc/2006-03-01/"

// xmlTimeFormat is the timestamp format of S3 XML documents.
const xmlTimeFormat = "2006-01-02T15:04:05.000Z"

// Request body limits.
const (
	maxCompleteBody     = 4 << 20 // CompleteMultipartUpload: 10,000 parts with checksums fit easily
	maxDeleteBody       = 4 << 20 // DeleteObjects: 1,000 keys of 1,024 bytes, escaped
	maxCreateBucketBody = 64 << 10
	maxDeleteKeys       = 1000
	maxCompleteParts    = 10000
)

func xmlTime(t time.Time) string { return t.UTC().Format(xmlTimeFormat) }

// quoteETag returns the ETag as S3 sends it in headers and XML.
func quoteETag(etag string) string { return `"` + etag + `"` }

// unquoteETag accepts an ETag with or without quotes (and a weak prefix).
func unquoteETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}

// checksumsXML are the Checksum* elements of an object or a part, in S3's
// order; empty ones are left out. Embedded, its elements read and write as
// the outer document's own.
type checksumsXML struct {
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

// ---- request documents ----

type completeMultipartUpload struct {
	XMLName xml.Name       `xml:"CompleteMultipartUpload"`
	Parts   []completePart `xml:"Part"`
}

type completePart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
	checksumsXML
}

type deleteRequest struct {
	XMLName xml.Name         `xml:"Delete"`
	Quiet   bool             `xml:"Quiet"`
	Objects []deleteObjectID `xml:"Object"`
}

type deleteObjectID struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
}

type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint string   `xml:"LocationConstraint"`
}

// decodeXMLBody strictly decodes one document whose root element is root
// into v: the body must be at most limit bytes, well formed, have that root,
// and carry nothing but whitespace, comments or processing instructions
// after it. Every failure wraps errXML (or errBodyTooLarge).
func decodeXMLBody(r io.Reader, limit int64, root string, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read %s body: %w", root, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%s body over %d bytes: %w", root, limit, errBodyTooLarge)
	}
	return decodeXMLBytes(data, root, v)
}

func decodeXMLBytes(data []byte, root string, v any) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	// Find the root start element without consuming it twice.
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("decode %s: %v: %w", root, err, errXML)
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.Comment, xml.Directive:
			continue
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("decode %s: text before root: %w", root, errXML)
			}
			continue
		case xml.StartElement:
			if t.Name.Local != root {
				return fmt.Errorf("decode %s: root element %q: %w", root, t.Name.Local, errXML)
			}
			if err := d.DecodeElement(v, &t); err != nil {
				return fmt.Errorf("decode %s: %v: %w", root, err, errXML)
			}
		default:
			return fmt.Errorf("decode %s: unexpected token: %w", root, errXML)
		}
		break
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode %s trailer: %v: %w", root, err, errXML)
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("decode %s: text after root: %w", root, errXML)
			}
		default:
			return fmt.Errorf("decode %s: content after root: %w", root, errXML)
		}
	}
}

// decodeComplete decodes a CompleteMultipartUpload body.
func decodeComplete(r io.Reader) (completeMultipartUpload, error) {
	var c completeMultipartUpload
	if err := decodeXMLBody(r, maxCompleteBody, "CompleteMultipartUpload", &c); err != nil {
		return c, err
	}
	if len(c.Parts) == 0 {
		return c, fmt.Errorf("CompleteMultipartUpload without parts: %w", errXML)
	}
	if len(c.Parts) > maxCompleteParts {
		return c, fmt.Errorf("CompleteMultipartUpload with %d parts (max %d): %w", len(c.Parts), maxCompleteParts, errXML)
	}
	for _, p := range c.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxPartNumber {
			return c, fmt.Errorf("part %d: %w", p.PartNumber, ErrInvalidPartNumber)
		}
	}
	return c, nil
}

// decodeDelete decodes a DeleteObjects body.
func decodeDelete(r io.Reader) (deleteRequest, error) {
	var d deleteRequest
	if err := decodeXMLBody(r, maxDeleteBody, "Delete", &d); err != nil {
		return d, err
	}
	if len(d.Objects) == 0 || len(d.Objects) > maxDeleteKeys {
		return d, fmt.Errorf("Delete with %d objects (1..%d): %w", len(d.Objects), maxDeleteKeys, errXML)
	}
	return d, nil
}

// decodeCreateBucket decodes an optional CreateBucketConfiguration body; an
// empty body is valid and yields "".
func decodeCreateBucket(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCreateBucketBody+1))
	if err != nil {
		return "", fmt.Errorf("read CreateBucketConfiguration: %w", err)
	}
	if len(data) > maxCreateBucketBody {
		return "", fmt.Errorf("CreateBucketConfiguration: %w", errBodyTooLarge)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", nil
	}
	var c createBucketConfiguration
	if err := decodeXMLBytes(data, "CreateBucketConfiguration", &c); err != nil {
		return "", err
	}
	return strings.TrimSpace(c.LocationConstraint), nil
}

// ---- response documents ----

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type listAllMyBucketsResult struct {
	XMLName xml.Name     `xml:"ListAllMyBucketsResult"`
	NS      string       `xml:"xmlns,attr"`
	Owner   owner        `xml:"Owner"`
	Buckets []bucketInfo `xml:"Buckets>Bucket"`
	// ContinuationToken is the token of the next page (max-buckets).
	ContinuationToken string `xml:"ContinuationToken,omitempty"`
	Prefix            string `xml:"Prefix,omitempty"`
}

type bucketInfo struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

type locationConstraint struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	NS      string   `xml:"xmlns,attr"`
	Value   string   `xml:",chardata"`
}

type versioningConfiguration struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	NS      string   `xml:"xmlns,attr"`
}

type listObject struct {
	Key               string `xml:"Key"`
	LastModified      string `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
	Size              int64  `xml:"Size"`
	Owner             *owner `xml:"Owner,omitempty"`
	StorageClass      string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

type listBucketResult struct {
	XMLName        xml.Name       `xml:"ListBucketResult"`
	NS             string         `xml:"xmlns,attr"`
	Name           string         `xml:"Name"`
	Prefix         string         `xml:"Prefix"`
	Marker         string         `xml:"Marker"`
	NextMarker     string         `xml:"NextMarker,omitempty"`
	MaxKeys        int            `xml:"MaxKeys"`
	Delimiter      string         `xml:"Delimiter,omitempty"`
	IsTruncated    bool           `xml:"IsTruncated"`
	EncodingType   string         `xml:"EncodingType,omitempty"`
	Contents       []listObject   `xml:"Contents"`
	CommonPrefixes []commonPrefix `xml:"CommonPrefixes"`
}

type listBucketResultV2 struct {
	XMLName               xml.Name       `xml:"ListBucketResult"`
	NS                    string         `xml:"xmlns,attr"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	ContinuationToken     *string        `xml:"ContinuationToken,omitempty"` // echoed even when empty
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	KeyCount              int            `xml:"KeyCount"`
	MaxKeys               int            `xml:"MaxKeys"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	IsTruncated           bool           `xml:"IsTruncated"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	Contents              []listObject   `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type initiateMultipartUploadResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

type completeMultipartUploadResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
	checksumsXML
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	NS           string   `xml:"xmlns,attr"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	NS           string   `xml:"xmlns,attr"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

type partXML struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	checksumsXML
}

type listPartsResult struct {
	XMLName              xml.Name  `xml:"ListPartsResult"`
	NS                   string    `xml:"xmlns,attr"`
	Bucket               string    `xml:"Bucket"`
	Key                  string    `xml:"Key"`
	UploadID             string    `xml:"UploadId"`
	Initiator            owner     `xml:"Initiator"`
	Owner                owner     `xml:"Owner"`
	StorageClass         string    `xml:"StorageClass"`
	PartNumberMarker     int       `xml:"PartNumberMarker"`
	NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
	MaxParts             int       `xml:"MaxParts"`
	IsTruncated          bool      `xml:"IsTruncated"`
	ChecksumAlgorithm    string    `xml:"ChecksumAlgorithm,omitempty"`
	Parts                []partXML `xml:"Part"`
}

type uploadXML struct {
	Key               string `xml:"Key"`
	UploadID          string `xml:"UploadId"`
	Initiator         owner  `xml:"Initiator"`
	Owner             owner  `xml:"Owner"`
	StorageClass      string `xml:"StorageClass"`
	Initiated         string `xml:"Initiated"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
}

type listMultipartUploadsResult struct {
	XMLName            xml.Name       `xml:"ListMultipartUploadsResult"`
	NS                 string         `xml:"xmlns,attr"`
	Bucket             string         `xml:"Bucket"`
	KeyMarker          string         `xml:"KeyMarker"`
	UploadIDMarker     string         `xml:"UploadIdMarker"`
	NextKeyMarker      string         `xml:"NextKeyMarker"`
	NextUploadIDMarker string         `xml:"NextUploadIdMarker"`
	Prefix             string         `xml:"Prefix"`
	Delimiter          string         `xml:"Delimiter,omitempty"`
	MaxUploads         int            `xml:"MaxUploads"`
	IsTruncated        bool           `xml:"IsTruncated"`
	EncodingType       string         `xml:"EncodingType,omitempty"`
	Uploads            []uploadXML    `xml:"Upload"`
	CommonPrefixes     []commonPrefix `xml:"CommonPrefixes"`
}

type deletedXML struct {
	Key string `xml:"Key"`
}

type deleteErrorXML struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type deleteResult struct {
	XMLName xml.Name         `xml:"DeleteResult"`
	NS      string           `xml:"xmlns,attr"`
	Deleted []deletedXML     `xml:"Deleted"`
	Errors  []deleteErrorXML `xml:"Error"`
}

// checksumFields fills the Checksum* XML fields from a model checksum map.
func checksumFields(m map[string]string) (crc32, crc32c, crc64, sha1, sha256 string) {
	return m["CRC32"], m["CRC32C"], m["CRC64NVME"], m["SHA1"], m["SHA256"]
}
