// Command franz-compat runs one franz-go scenario against a running broker, for
// compat-tests/test_franz_go.py.
//
//	franz-compat [-timeout 30s] <bootstrap host:port[,host:port...]> <scenario> [args...]
//
// It prints one JSON object on stdout: the scenario's observations (`result`) or why it
// failed (`error`), and `versions`, the API versions franz-go sent (from its own debug log
// lines "wrote <Request> v<N>"); the long-running produce_stream (replication.go) prints
// {"event": "progress", ...} lines before it, the result is always the last line. Exit
// status: 0 on success, 1 on a failure, 2 when the hard timeout fires (the process then exits
// whatever its goroutines are doing). franz-go's own warnings and errors go to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scenarios by name; each gets the scenario context (cancelled at the hard timeout) and the
// arguments after its name, and returns what it observed.
var scenarios = map[string]func(ctx context.Context, args []string) (any, error){
	"produce_consume": produceConsume,
	"idempotent":      idempotent,
	"acks":            acks,
	"group":           cooperativeGroup,
	"admin_topics":    adminTopics,
	"admin_offsets":   adminOffsets,
	"admin_groups":    adminGroups,
	"transactions":    transactions,
	"kip848":          kip848,
	"delete_records":  deleteRecords,
	"acls":            acls,
	"produce_stream":  produceStream,
	"consume_all":     consumeAll,
}

var (
	bootstrap string
	versions  = &versionLog{seen: map[string]map[int]bool{}}
	emitOnce  sync.Once
)

func main() {
	timeout := flag.Duration("timeout", 30*time.Second, "hard timeout of the whole scenario")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: franz-compat [-timeout D] <bootstrap> <scenario> [args...]")
		os.Exit(1)
	}
	bootstrap = flag.Arg(0)
	name := flag.Arg(1)
	run, ok := scenarios[name]
	if !ok {
		emit(map[string]any{"scenario": name, "error": "unknown scenario " + name}, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	time.AfterFunc(*timeout+2*time.Second, func() {
		emit(map[string]any{"scenario": name, "error": fmt.Sprintf("hard timeout: still running %s after the scenario's deadline", *timeout)}, 2)
	})
	result, err := run(ctx, flag.Args()[2:])
	if err != nil {
		out := map[string]any{"scenario": name, "error": err.Error()}
		if result != nil {
			out["partial"] = result
		}
		emit(out, 1)
	}
	emit(map[string]any{"scenario": name, "result": result}, 0)
}

// emit prints the one JSON line (with the versions seen) and exits; only the first call prints.
func emit(out map[string]any, code int) {
	emitOnce.Do(func() {
		out["versions"] = versions.snapshot()
		b, err := json.Marshal(out)
		if err != nil {
			b, _ = json.Marshal(map[string]any{"error": "encoding the result: " + err.Error()})
			code = 1
		}
		os.Stdout.Write(append(b, '\n'))
		os.Exit(code)
	})
	select {} // another goroutine is exiting
}

// versionLog is franz-go's logger: it notes the version of every request written and passes
// warnings and errors to stderr.
type versionLog struct {
	mu   sync.Mutex
	seen map[string]map[int]bool
}

var wrote = regexp.MustCompile(`^wrote (\w+) v(\d+)$`)

func (l *versionLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l *versionLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level >= kgo.LogLevelInfo {
		if m := wrote.FindStringSubmatch(msg); m != nil {
			v, _ := strconv.Atoi(m[2])
			l.mu.Lock()
			if l.seen[m[1]] == nil {
				l.seen[m[1]] = map[int]bool{}
			}
			l.seen[m[1]][v] = true
			l.mu.Unlock()
		}
		return
	}
	fmt.Fprintf(os.Stderr, "[kgo %s] %s %v\n", level, msg, keyvals)
}

func (l *versionLog) snapshot() map[string][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]int{}
	for api, vs := range l.seen {
		for v := range vs {
			out[api] = append(out[api], v)
		}
		sort.Ints(out[api])
	}
	return out
}

// newClient is a franz-go client of the broker under test; opts come after the defaults.
func newClient(clientID string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...), // one host:port, or a cluster's list
		kgo.ClientID(clientID),
		kgo.WithLogger(versions),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.RetryTimeout(10 * time.Second),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// errName is the Kafka error code name of err ("" for nil), or its text if it is not a
// Kafka error.
func errName(err error) string {
	if err == nil {
		return ""
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

// waitFor polls cond every 50 ms until it holds, the wait's deadline passes or ctx ends. A
// retriable Kafka error (a coordinator still loading, say) counts as "not yet".
func waitFor(ctx context.Context, what string, within time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	var lastRetriable error
	for {
		ok, err := cond()
		if err != nil && !kerr.IsRetriable(err) {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if err != nil {
			lastRetriable = err
		} else if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if lastRetriable != nil {
				return fmt.Errorf("timed out after %s waiting for %s (last retriable error: %v)", within, what, lastRetriable)
			}
			return fmt.Errorf("timed out after %s waiting for %s", within, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var uniqCounter atomic.Int64

// uniq is a name no other run uses.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1_000_000_000, uniqCounter.Add(1))
}

// rec is a record as the scenarios report it: []byte fields are base64 in JSON, nil as null.
type rec struct {
	Partition   int32    `json:"partition"`
	Offset      int64    `json:"offset"`
	Key         []byte   `json:"key"`
	Value       []byte   `json:"value"`
	Headers     []header `json:"headers"`
	Timestamp   int64    `json:"timestamp"`
	Codec       int8     `json:"codec"`
	ProducerID  int64    `json:"producer_id"`
	Epoch       int16    `json:"producer_epoch"`
	LeaderEpoch int32    `json:"leader_epoch"`
}

type header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

func toRec(r *kgo.Record) rec {
	hs := make([]header, 0, len(r.Headers))
	for _, h := range r.Headers {
		hs = append(hs, header{h.Key, h.Value})
	}
	return rec{
		Partition:   r.Partition,
		Offset:      r.Offset,
		Key:         r.Key,
		Value:       r.Value,
		Headers:     hs,
		Timestamp:   r.Timestamp.UnixMilli(),
		Codec:       int8(r.Attrs.CompressionType()),
		ProducerID:  r.ProducerID,
		Epoch:       r.ProducerEpoch,
		LeaderEpoch: r.LeaderEpoch,
	}
}

// readBack reads partitions of topic from their start with a direct (groupless) consumer
// until it holds want[p] records of each partition p, and returns them in order.
func readBack(ctx context.Context, topic string, want map[int32]int, opts ...kgo.Opt) ([]rec, error) {
	parts := map[int32]kgo.Offset{}
	for p := range want {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := newClient("sluice-compat-readback", append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	got := map[int32]int{}
	var out []rec
	deadline := time.Now().Add(15 * time.Second)
	for !reached(got, want) {
		if time.Now().After(deadline) {
			return out, fmt.Errorf("read back %v of %v records per partition within 15s", got, want)
		}
		records, err := pollBriefly(ctx, cl)
		if err != nil {
			return out, err
		}
		for _, r := range records {
			got[r.Partition]++
			out = append(out, toRec(r))
		}
	}
	sortInLogOrder(out, func(r rec) (int32, int64) { return r.Partition, r.Offset })
	return out, nil
}

// reached: have[p] >= want[p] for every partition p in want.
func reached[N int | int64](have, want map[int32]N) bool {
	for p, n := range want {
		if have[p] < n {
			return false
		}
	}
	return true
}

// pollBriefly polls cl for up to half a second and returns what it fetched, or a fetch error
// other than the poll's own timeout and a retriable Kafka error (kgo retries those itself: a
// partition not known yet, say).
func pollBriefly(ctx context.Context, cl *kgo.Client) ([]*kgo.Record, error) {
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	fs := cl.PollFetches(pctx)
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !kerr.IsRetriable(err) {
			ferr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
		}
	})
	if ferr != nil {
		return nil, ferr
	}
	return fs.Records(), nil
}

// sortInLogOrder sorts records by partition, then offset.
func sortInLogOrder[R any](records []R, at func(R) (partition int32, offset int64)) {
	sort.SliceStable(records, func(i, j int) bool {
		pi, oi := at(records[i])
		pj, oj := at(records[j])
		return pi < pj || (pi == pj && oi < oj)
	})
}
