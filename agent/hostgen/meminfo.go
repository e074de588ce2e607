package hostgen

import (
	"fmt"

	"github.com/procfleet/procfleet/agent/emit"
)

// meminfoField is one line of /proc/meminfo that node_exporter exports.
type meminfoField struct {
	key    string // as in the file, with its colon
	metric string
	bytes  bool // value in bytes (kB times 1024) rather than the bare number
}

// meminfoFields are the lines node_exporter v1.12.1 exports, from procfs'
// Meminfo struct; lines procfs knows but node_exporter does not export
// (SecPageTables, FileHugePages, Unaccepted, Hugetlb) and lines neither
// knows are skipped.
var meminfoFields = []meminfoField{
	{"MemTotal:", "node_memory_MemTotal_bytes", true},
	{"MemFree:", "node_memory_MemFree_bytes", true},
	{"MemAvailable:", "node_memory_MemAvailable_bytes", true},
	{"Buffers:", "node_memory_Buffers_bytes", true},
	{"Cached:", "node_memory_Cached_bytes", true},
	{"SwapCached:", "node_memory_SwapCached_bytes", true},
	{"Active:", "node_memory_Active_bytes", true},
	{"Inactive:", "node_memory_Inactive_bytes", true},
	{"Active(anon):", "node_memory_Active_anon_bytes", true},
	{"Inactive(anon):", "node_memory_Inactive_anon_bytes", true},
	{"Active(file):", "node_memory_Active_file_bytes", true},
	{"Inactive(file):", "node_memory_Inactive_file_bytes", true},
	{"Unevictable:", "node_memory_Unevictable_bytes", true},
	{"Mlocked:", "node_memory_Mlocked_bytes", true},
	{"SwapTotal:", "node_memory_SwapTotal_bytes", true},
	{"SwapFree:", "node_memory_SwapFree_bytes", true},
	{"Zswap:", "node_memory_Zswap_bytes", true},
	{"Zswapped:", "node_memory_Zswapped_bytes", true},
	{"Dirty:", "node_memory_Dirty_bytes", true},
	{"Writeback:", "node_memory_Writeback_bytes", true},
	{"AnonPages:", "node_memory_AnonPages_bytes", true},
	{"Mapped:", "node_memory_Mapped_bytes", true},
	{"Shmem:", "node_memory_Shmem_bytes", true},
	{"Slab:", "node_memory_Slab_bytes", true},
	{"SReclaimable:", "node_memory_SReclaimable_bytes", true},
	{"SUnreclaim:", "node_memory_SUnreclaim_bytes", true},
	{"KernelStack:", "node_memory_KernelStack_bytes", true},
	{"PageTables:", "node_memory_PageTables_bytes", true},
	{"NFS_Unstable:", "node_memory_NFS_Unstable_bytes", true},
	{"Bounce:", "node_memory_Bounce_bytes", true},
	{"WritebackTmp:", "node_memory_WritebackTmp_bytes", true},
	{"CommitLimit:", "node_memory_CommitLimit_bytes", true},
	{"Committed_AS:", "node_memory_Committed_AS_bytes", true},
	{"VmallocTotal:", "node_memory_VmallocTotal_bytes", true},
	{"VmallocUsed:", "node_memory_VmallocUsed_bytes", true},
	{"VmallocChunk:", "node_memory_VmallocChunk_bytes", true},
	{"Percpu:", "node_memory_Percpu_bytes", true},
	{"HardwareCorrupted:", "node_memory_HardwareCorrupted_bytes", true},
	{"AnonHugePages:", "node_memory_AnonHugePages_bytes", true},
	{"ShmemHugePages:", "node_memory_ShmemHugePages_bytes", true},
	{"ShmemPmdMapped:", "node_memory_ShmemPmdMapped_bytes", true},
	{"CmaTotal:", "node_memory_CmaTotal_bytes", true},
	{"CmaFree:", "node_memory_CmaFree_bytes", true},
	{"HugePages_Total:", "node_memory_HugePages_Total", false},
	{"HugePages_Free:", "node_memory_HugePages_Free", false},
	{"HugePages_Rsvd:", "node_memory_HugePages_Rsvd", false},
	{"HugePages_Surp:", "node_memory_HugePages_Surp", false},
	{"Hugepagesize:", "node_memory_Hugepagesize_bytes", true},
	{"DirectMap4k:", "node_memory_DirectMap4k_bytes", true},
	{"DirectMap2M:", "node_memory_DirectMap2M_bytes", true},
	{"DirectMap1G:", "node_memory_DirectMap1G_bytes", true},
}

// meminfoIndex maps a key with its colon to its index in meminfoFields.
var meminfoIndex = func() map[string]int {
	m := make(map[string]int, len(meminfoFields))
	for i, f := range meminfoFields {
		m[f.key] = i
	}
	return m
}()

// meminfoLookup returns the index in meminfoFields of key (colon included)
// on line i (0-based), -1 for a line not exported, from cache while the
// line holds the key it held last time.
func meminfoLookup(cache *rowCache[int], i int, key []byte) int {
	idx, hit := cache.at(i, key)
	if !hit {
		*idx = -1
		if j, ok := meminfoIndex[string(key)]; ok {
			*idx = j
		}
	}
	return *idx
}

// meminfoFast reads the value of a line whose key is known, rest being the
// line after the key, when it is plain decimal digits followed by nothing
// or by " kB"; ok is false for anything else.
func meminfoFast(rest []byte) (val, valBytes uint64, ok bool) {
	rest = rest[skipASCIISpace(rest, 0):]
	val, unit, ok := cutUint(rest)
	switch {
	case !ok || !base0Decimal(rest[:len(rest)-len(unit)]):
		return 0, 0, false
	case len(unit) == 0:
		return val, val, true
	case string(unit) == " kB":
		return val, 1024 * val, true
	}
	return 0, 0, false
}

// parseMeminfo parses /proc/meminfo (named file in errors) as procfs does
// and calls fn for each line node_exporter exports with its index in
// meminfoFields, its number and its value in bytes: the number times 1024
// for a "kB" line, the number itself for a line without unit. The product
// wraps around at 2^64 as it does in procfs. A bad line, exported or not, is
// skipped and reported. cache keeps the key of each line between parses.
func parseMeminfo(data []byte, file string, fields *[][]byte, cache *rowCache[int], fn func(idx int, val, valBytes uint64)) error {
	errs := lineErrs{file: file}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		if idx, rest, ok := cache.lead(n-1, line); ok {
			if val, valBytes, ok := meminfoFast(rest); ok {
				if *idx >= 0 {
					fn(*idx, val, valBytes)
				}
				continue
			}
		}
		f := splitFields(line, *fields)
		*fields = f
		if len(f) < 2 {
			if len(f) == 1 || len(line) > 0 {
				errs.addf(n, "want \"Key: value [kB]\", got %q", line)
			}
			continue
		}
		idx := meminfoLookup(cache, n-1, f[0])
		val, valBytes, err := meminfoValue(f)
		if err != nil {
			errs.add(n, err)
			continue
		}
		if idx >= 0 {
			fn(idx, val, valBytes)
		}
	}
	return errs.err()
}

// meminfoValue parses the value and unit fields of a line the general way.
func meminfoValue(f [][]byte) (val, valBytes uint64, err error) {
	val, err = parseUintBase0(f[1])
	if err != nil {
		return 0, 0, err
	}
	switch len(f) {
	case 2:
		return val, val, nil
	case 3:
		if string(f[2]) != "kB" {
			return 0, 0, fmt.Errorf("unit %q, want kB", f[2])
		}
		return val, 1024 * val, nil
	}
	return 0, 0, fmt.Errorf("want \"Key: value [kB]\", got %d fields", len(f))
}

// Meminfo emits node_memory_*: what node_exporter's meminfo collector
// emits from /proc/meminfo. It is not safe for concurrent use.
type Meminfo struct {
	procFile
	fields [][]byte
	scan   *emit.Scan
	fn     func(idx int, val, valBytes uint64)

	// index caches, line by line, the index in meminfoFields of the key
	// last seen on that line (-1: not exported), so that the map lookup is
	// skipped, and the line is not split, while the file keeps its shape.
	index rowCache[int]
}

// NewMeminfo returns a generator of /proc/meminfo under o.ProcRoot.
func NewMeminfo(o Options) *Meminfo {
	o = o.withDefaults()
	g := &Meminfo{
		procFile: newProcFile(4<<10, o.ProcRoot, "meminfo"),
		fields:   make([][]byte, 0, 8),
	}
	g.fn = g.emit
	return g
}

// Name implements emit.Generator.
func (g *Meminfo) Name() string { return "meminfo" }

// Collect implements emit.Generator.
func (g *Meminfo) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return err
	}
	g.scan = s
	err = parseMeminfo(data, g.path, &g.fields, &g.index, g.fn)
	g.scan = nil
	return err
}

func (g *Meminfo) emit(idx int, val, valBytes uint64) {
	f := &meminfoFields[idx]
	v := val
	if f.bytes {
		v = valBytes
	}
	g.scan.Begin(f.metric).Value(float64(v))
}
