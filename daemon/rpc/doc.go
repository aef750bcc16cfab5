// Package rpc carries requests between cluster members over libp2p streams.
//
// Every service registers under a versioned protocol ID, /entrepot/<service>/1.
// A call is one stream: one request frame, one response frame, both versioned
// and size-bounded, under a deadline. Calls to this node itself skip the network.
// QuorumCall fans a request out to several members in parallel and returns as
// soon as enough of them answered, so a quorum write or read costs one round trip.
package rpc
