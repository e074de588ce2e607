// Package targets decides which cluster member scrapes each target of a
// `placement: cluster` scrape job, and encodes the job's resolved target
// set for publication in etcd.
//
// # Ownership
//
// Every member computes ownership itself, from the same etcd revision
// (the job's published targets, the live members and their labels), with
// [Assign]: a pure, deterministic function of its inputs whatever their
// order, so that no leader is needed. It is rendezvous (highest random
// weight) hashing with bounded loads: each target ranks the members by a
// hash of the pair, and is given to the first member in its ranking that
// still has room under Config.Load times the ideal share. Targets are
// placed heaviest first (by the samples their last scrape returned,
// rounded to three binary digits by [WeightClass]), so that a few heavy
// targets spread out before the light ones fill the gaps. docs/design/scraping.md
// ("Ownership of scrape targets") has the measurements that chose this over
// github.com/buraksezer/consistent.
//
// [Phase] gives each target a scrape phase from a hash of its ID, the same
// on every member, so that two members scraping one target during a
// handover stamp their samples at the same instants.
//
// # Weights
//
// Each member publishes the classes of the targets it scraped as a weight
// list ([EncodeWeights], [DecodeWeights]: 9 bytes a target, keyed by
// [WeightKey]); [NextClass] holds a class back while a count hovers
// around a boundary, and [MergeWeights] turns the lists of all members
// into the weights Assign takes: the largest class of each target.
//
// # Publication
//
// [Encode] turns a job's resolved targets into the values of a manifest
// key and of chunk keys, none larger than etcd takes in one request;
// [Decode] turns them back, checking them against the manifest. Both are
// pure; the etcd I/O (publisher and watcher) lives elsewhere and follows
// the contract documented on [Publication].
//
// Everything in this package is safe for concurrent use: it keeps no
// state between calls.
package targets
