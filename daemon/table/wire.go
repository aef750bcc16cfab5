package table

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/entrepot/entrepot/daemon/db"
)

// Wire protocol of the "table" rpc service (/entrepot/table/1). Every
// request and answer starts with wireVersion; requests then name the table.
// Lengths are uvarints and are checked against the bytes actually present,
// so a lying length allocates nothing.
const wireVersion = 1

// ErrBadMessage reports a malformed or unsupported wire message.
var ErrBadMessage = errors.New("table: malformed message")

// Payload bounds (the rpc frame allows 64 MiB).
const (
	maxWireItems = 1 << 16  // entries, keys or items in one message
	batchBytes   = 1 << 20  // a sender cuts batches of entries at about this size
	maxWireBytes = 48 << 20 // a sender never builds a larger message
)

// rpc method names.
const (
	mInsert   = "insert"
	mGet      = "get"
	mRange    = "range"
	mSummary  = "range-summary" // range, values as the schema's Summary
	mRoots    = "roots"
	mChildren = "children"
	mItems    = "items"
	mGC       = "gc"
)

type wenc struct{ b []byte }

func newEnc(t db.TableID) *wenc { return &wenc{b: []byte{wireVersion, byte(t)}} }
func newRespEnc() *wenc         { return &wenc{b: []byte{wireVersion}} }

func (e *wenc) u(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *wenc) bs(b []byte)    { e.u(uint64(len(b))); e.b = append(e.b, b...) }
func (e *wenc) s(s string)     { e.u(uint64(len(s))); e.b = append(e.b, s...) }
func (e *wenc) byte1(c byte)   { e.b = append(e.b, c) }
func (e *wenc) fixed(b []byte) { e.b = append(e.b, b...) }
func (e *wenc) bool1(v bool) {
	if v {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
}

type wdec struct {
	b   []byte
	err error
}

func (d *wdec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadMessage, what)
	}
}

func (d *wdec) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *wdec) bool1() bool {
	switch d.byte1() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}

func (d *wdec) u() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		d.fail("bad uvarint") // overflow, truncated or not minimal
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *wdec) bs() []byte {
	n := d.u()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length beyond message")
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *wdec) s() string { return string(d.bs()) }

func (d *wdec) fixed(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail("truncated")
		return make([]byte, n)
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

// count reads a number of items, each at least min bytes long.
func (d *wdec) count(min int) int {
	n := d.u()
	if d.err == nil && (n > maxWireItems || n*uint64(min) > uint64(len(d.b))) {
		d.fail("too many items")
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *wdec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// openReq checks the version and returns the table of a request.
func openReq(b []byte) (*wdec, db.TableID) {
	d := &wdec{b: b}
	if v := d.byte1(); d.err == nil && v != wireVersion {
		d.fail(fmt.Sprintf("version %d", v))
	}
	return d, db.TableID(d.byte1())
}

func openResp(b []byte) *wdec {
	d := &wdec{b: b}
	if v := d.byte1(); d.err == nil && v != wireVersion {
		d.fail(fmt.Sprintf("version %d", v))
	}
	return d
}

// insert: flags (bit 0: answer the changes) | entries.
func encodeInsert(t db.TableID, wantChanges bool, es []rawEntry) []byte {
	e := newEnc(t)
	e.bool1(wantChanges)
	e.u(uint64(len(es)))
	for _, x := range es {
		e.s(x.PK)
		e.s(x.SK)
		e.bs(x.Value)
	}
	return e.b
}

func decodeInsert(b []byte) (t db.TableID, wantChanges bool, es []rawEntry, err error) {
	d, t := openReq(b)
	wantChanges = d.bool1()
	n := d.count(3)
	es = make([]rawEntry, 0, n)
	for range n {
		es = append(es, rawEntry{PK: d.s(), SK: d.s(), Value: d.bs()})
	}
	return t, wantChanges, es, d.end()
}

func encodeChanges(cs []rawChange) []byte {
	e := newRespEnc()
	e.u(uint64(len(cs)))
	for _, c := range cs {
		e.byte1(b2u(c.HadOld) | b2u(c.Changed)<<1)
		e.bs(c.Old)
		e.bs(c.New)
	}
	return e.b
}

func b2u(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func decodeChanges(b []byte) ([]rawChange, error) {
	d := openResp(b)
	n := d.count(3)
	out := make([]rawChange, 0, n)
	for range n {
		f := d.byte1()
		if f > 3 {
			d.fail("bad change flags")
		}
		out = append(out, rawChange{HadOld: f&1 != 0, Changed: f&2 != 0, Old: d.bs(), New: d.bs()})
	}
	return out, d.end()
}

// get: keys -> values.
func encodeGet(t db.TableID, keys []rawKey) []byte {
	e := newEnc(t)
	e.u(uint64(len(keys)))
	for _, k := range keys {
		e.s(k.PK)
		e.s(k.SK)
	}
	return e.b
}

func decodeGet(b []byte) (db.TableID, []rawKey, error) {
	d, t := openReq(b)
	n := d.count(2)
	keys := make([]rawKey, 0, n)
	for range n {
		keys = append(keys, rawKey{PK: d.s(), SK: d.s()})
	}
	return t, keys, d.end()
}

func encodeValues(vs []rawValue) []byte {
	e := newRespEnc()
	e.u(uint64(len(vs)))
	for _, v := range vs {
		e.bool1(v.Found)
		if v.Found {
			e.bs(v.Value)
		}
	}
	return e.b
}

func decodeValues(b []byte) ([]rawValue, error) {
	d := openResp(b)
	n := d.count(1)
	out := make([]rawValue, 0, n)
	for range n {
		v := rawValue{Found: d.bool1()}
		if v.Found {
			v.Value = d.bs()
		}
		out = append(out, v)
	}
	return out, d.end()
}

// range: pk, from, limit -> entries of pk, and whether more follow.
func encodeRange(t db.TableID, pk, from string, limit int) []byte {
	e := newEnc(t)
	e.s(pk)
	e.s(from)
	e.u(uint64(max(limit, 0)))
	return e.b
}

func decodeRange(b []byte) (t db.TableID, pk, from string, limit int, err error) {
	d, t := openReq(b)
	pk, from = d.s(), d.s()
	l := d.u()
	if l > maxWireItems {
		d.fail("limit too large")
	}
	return t, pk, from, int(l), d.end()
}

func encodeEntries(es []rawEntry, more bool) []byte {
	e := newRespEnc()
	e.bool1(more)
	e.u(uint64(len(es)))
	for _, x := range es {
		e.s(x.PK)
		e.s(x.SK)
		e.bs(x.Value)
	}
	return e.b
}

func decodeEntries(b []byte) ([]rawEntry, bool, error) {
	d := openResp(b)
	more := d.bool1()
	n := d.count(3)
	out := make([]rawEntry, 0, n)
	for range n {
		out = append(out, rawEntry{PK: d.s(), SK: d.s(), Value: d.bs()})
	}
	return out, more, d.end()
}

// roots: -> the root of each of the 256 partitions.
func encodeRoots(rs [256]mnode) []byte {
	e := newRespEnc()
	for _, r := range rs {
		e.fixed(r.Hash[:])
		e.u(r.Count)
	}
	return e.b
}

func decodeRoots(b []byte) ([256]mnode, error) {
	d := openResp(b)
	var out [256]mnode
	for i := range out {
		copy(out[i].Hash[:], d.fixed(32))
		out[i].Count = d.u()
	}
	return out, d.end()
}

func encodeRootsReq(t db.TableID) []byte { return newEnc(t).b }

func decodeRootsReq(b []byte) (db.TableID, error) {
	d, t := openReq(b)
	return t, d.end()
}

// children: partition, path -> non-empty children.
func encodeChildrenReq(t db.TableID, p uint8, path []byte) []byte {
	e := newEnc(t)
	e.byte1(p)
	e.bs(path)
	return e.b
}

func decodeChildrenReq(b []byte) (t db.TableID, p uint8, path []byte, err error) {
	d, t := openReq(b)
	p = d.byte1()
	path = d.bs()
	if len(path) >= merkleDepth {
		d.fail("path too long")
	}
	return t, p, path, d.end()
}

func encodeChildren(cs []child) []byte {
	e := newRespEnc()
	e.u(uint64(len(cs)))
	for _, c := range cs {
		e.byte1(c.B)
		e.fixed(c.Node.Hash[:])
		e.u(c.Node.Count)
	}
	return e.b
}

func decodeChildren(b []byte) ([]child, error) {
	d := openResp(b)
	n := d.count(34)
	if n > 256 {
		d.fail("more than 256 children")
		n = 0
	}
	out := make([]child, 0, n)
	for range n {
		c := child{B: d.byte1()}
		copy(c.Node.Hash[:], d.fixed(32))
		c.Node.Count = d.u()
		out = append(out, c)
	}
	return out, d.end()
}

// items: partition, path, after, limit -> items with their cursors.
func encodeItemsReq(t db.TableID, p uint8, path, after []byte, limit int) []byte {
	e := newEnc(t)
	e.byte1(p)
	e.bs(path)
	e.bool1(after != nil)
	e.bs(after)
	e.u(uint64(limit))
	return e.b
}

func decodeItemsReq(b []byte) (t db.TableID, p uint8, path, after []byte, limit int, err error) {
	d, t := openReq(b)
	p = d.byte1()
	path = d.bs()
	hasAfter := d.bool1()
	after = d.bs()
	if !hasAfter {
		after = nil
	} else if after == nil {
		after = []byte{}
	}
	l := d.u()
	if len(path) > merkleDepth {
		d.fail("path too long")
	}
	if l == 0 || l > maxWireItems {
		d.fail("bad limit")
	}
	return t, p, path, after, int(l), d.end()
}

func encodeItems(items []itemRef, more bool) []byte {
	e := newRespEnc()
	e.bool1(more)
	e.u(uint64(len(items)))
	for _, it := range items {
		e.s(it.PK)
		e.s(it.SK)
		e.fixed(it.Hash[:])
		e.bs(it.Cursor)
	}
	return e.b
}

func decodeItems(b []byte) ([]itemRef, bool, error) {
	d := openResp(b)
	more := d.bool1()
	n := d.count(35)
	out := make([]itemRef, 0, n)
	for range n {
		it := itemRef{PK: d.s(), SK: d.s()}
		copy(it.Hash[:], d.fixed(32))
		it.Cursor = d.bs()
		out = append(out, it)
	}
	return out, more, d.end()
}

// gc: tombstones to delete if unchanged -> number deleted.
func encodeGC(t db.TableID, items []gcItem) []byte {
	e := newEnc(t)
	e.u(uint64(len(items)))
	for _, g := range items {
		e.s(g.PK)
		e.s(g.SK)
		e.fixed(g.Hash[:])
	}
	return e.b
}

func decodeGC(b []byte) (db.TableID, []gcItem, error) {
	d, t := openReq(b)
	n := d.count(34)
	out := make([]gcItem, 0, n)
	for range n {
		g := gcItem{PK: d.s(), SK: d.s()}
		copy(g.Hash[:], d.fixed(32))
		out = append(out, g)
	}
	return t, out, d.end()
}

func encodeCount(n int) []byte {
	e := newRespEnc()
	e.u(uint64(n))
	return e.b
}

func decodeCount(b []byte) (int, error) {
	d := openResp(b)
	n := d.u()
	if n > maxWireItems {
		d.fail("count too large")
	}
	return int(n), d.end()
}
