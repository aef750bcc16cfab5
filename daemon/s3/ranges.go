package s3

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errRangeNotSatisfiable answers 416 InvalidRange.
var errRangeNotSatisfiable = errors.New("range not satisfiable")

// byteRange is a resolved, satisfiable range of an object of known size.
type byteRange struct {
	Start, Length int64
}

// parseRange resolves a Range header against an object of size bytes, as S3
// does: no header, a syntactically invalid header, a unit other than bytes
// or several ranges all mean "the whole object" (ok=false); a valid single
// range that does not overlap the object is errRangeNotSatisfiable; the end
// of a range is clamped to the object.
func parseRange(h string, size int64) (r byteRange, ok bool, err error) {
	h = strings.TrimSpace(h)
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return r, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return r, false, nil
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, perr := parseNonNeg(last)
		if perr != nil {
			return r, false, nil
		}
		if n == 0 || size == 0 {
			return r, false, fmt.Errorf("suffix range %d of %d bytes: %w", n, size, errRangeNotSatisfiable)
		}
		n = min(n, size)
		return byteRange{Start: size - n, Length: n}, true, nil
	}
	start, perr := parseNonNeg(first)
	if perr != nil {
		return r, false, nil
	}
	end := size - 1
	if last != "" {
		e, perr := parseNonNeg(last)
		if perr != nil || e < start {
			return r, false, nil
		}
		end = min(e, size-1)
	}
	if start >= size {
		return r, false, fmt.Errorf("range start %d of %d bytes: %w", start, size, errRangeNotSatisfiable)
	}
	return byteRange{Start: start, Length: end - start + 1}, true, nil
}

// parseCopySourceRange parses x-amz-copy-source-range ("bytes=first-last",
// both required) against a source of size bytes.
func parseCopySourceRange(h string, size int64) (byteRange, error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found {
		return byteRange{}, apiErr(CodeInvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
	}
	first, last, found := strings.Cut(spec, "-")
	start, err1 := parseNonNeg(first)
	end, err2 := parseNonNeg(last)
	if !found || err1 != nil || err2 != nil || end < start {
		return byteRange{}, apiErr(CodeInvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
	}
	if end >= size {
		return byteRange{}, &Error{Code: CodeInvalidRange, Message: "The requested range is not satisfiable",
			Err: fmt.Errorf("copy range %d-%d of %d bytes: %w", start, end, size, errRangeNotSatisfiable)}
	}
	return byteRange{Start: start, Length: end - start + 1}, nil
}

func parseNonNeg(s string) (int64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}
