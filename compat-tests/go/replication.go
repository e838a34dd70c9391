package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The replication scenarios of compat-tests/test_replication_clients.py: a producer streaming
// while the test kills and restarts brokers, and a full read afterwards. Each record's fate goes
// into the result so that the test's checker (checker.py) can compare it with the log.

// streamed is one record of produce_stream: its value, the partition it was sent to, and how
// it ended (the acknowledged offset, or the error), with when (ms since the stream began).
type streamed struct {
	Value     string `json:"value"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"` // -1 unless acknowledged
	Err       string `json:"err"`    // "" when acknowledged
	Done      bool   `json:"done"`   // false: no answer by the end (the flush gave up)
	AckMs     int64  `json:"ack_ms"` // when the promise ran
	SentMs    int64  `json:"sent_ms"`
}

// printLine writes one JSON line on stdout (progress events; the result comes from emit).
var stdoutMu sync.Mutex

func printLine(v any) {
	b, _ := json.Marshal(v)
	stdoutMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	stdoutMu.Unlock()
}

// produceStream <topic> <partitions> <seconds> <rate> [stdin]: franz-go's default producer
// (idempotent, acks=all, unlimited retries) sends values "<topic>-<seq>" round robin over the
// partitions at <rate> records/s for <seconds> s, or until its stdin ends when "stdin" is
// given; every half second it prints {"event": "progress", "acked": [per partition], ...}.
// Then it flushes (up to 60 s) and returns every record as `streamed`, in send order.
func produceStream(ctx context.Context, args []string) (any, error) {
	if len(args) < 4 || len(args) > 5 || (len(args) == 5 && args[4] != "stdin") {
		return nil, fmt.Errorf("usage: produce_stream <topic> <partitions> <seconds> <rate> [stdin]")
	}
	topic := args[0]
	partitions, err1 := strconv.Atoi(args[1])
	seconds, err2 := strconv.ParseFloat(args[2], 64)
	rate, err3 := strconv.ParseFloat(args[3], 64)
	if err := errors.Join(err1, err2, err3); err != nil || partitions < 1 || rate <= 0 {
		return nil, fmt.Errorf("produce_stream: bad arguments %v: %v", args, err)
	}
	cl, err := newClient("sluice-compat-stream",
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(250*time.Millisecond), // learn a new leader soon after an error
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	stop := make(chan struct{})
	var stopOnce sync.Once
	stopNow := func() { stopOnce.Do(func() { close(stop) }) }
	if len(args) == 5 {
		go func() {
			io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			stopNow()
		}()
	}
	time.AfterFunc(time.Duration(seconds*float64(time.Second)), stopNow)

	var (
		mu      sync.Mutex
		records []streamed
		acked   = make([]int, partitions)
		failed  int
	)
	start := time.Now()
	since := func() int64 { return time.Since(start).Milliseconds() }

	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				ev := map[string]any{"event": "progress", "ms": since(), "sent": len(records),
					"acked": append([]int(nil), acked...), "failed": failed}
				mu.Unlock()
				printLine(ev)
			}
		}
	}()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
sending:
	for {
		select {
		case <-stop:
			break sending
		case <-ctx.Done():
			stopNow()
			break sending
		case <-tick.C:
		}
		owed := int(rate*time.Since(start).Seconds()) - len(records)
		for i := 0; i < owed; i++ {
			mu.Lock()
			n := len(records)
			value := fmt.Sprintf("%s-%d", topic, n)
			p := int32(n % partitions)
			records = append(records, streamed{Value: value, Partition: p, Offset: -1, SentMs: since()})
			mu.Unlock()
			cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(value)}, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				s := &records[n]
				s.Done, s.AckMs = true, since()
				if err != nil {
					s.Err = err.Error()
					failed++
				} else {
					s.Offset = r.Offset
					acked[r.Partition]++
				}
			})
		}
	}
	<-progressDone
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	flushErr := cl.Flush(fctx)
	mu.Lock()
	defer mu.Unlock()
	out := map[string]any{"topic": topic, "records": records, "acked": acked, "failed": failed,
		"ms": since()}
	if flushErr != nil {
		return out, fmt.Errorf("flush: %w", flushErr)
	}
	return out, nil
}

// consumeAll <topic>: every record of every partition of the topic, from its log start to the
// end offset at the start of the read, by a direct (groupless) consumer; (partition, offset,
// value) in partition and offset order, and the offsets it read up to.
func consumeAll(ctx context.Context, args []string) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("usage: consume_all <topic>")
	}
	topic := args[0]
	adm, admCl, err := adminClient("sluice-compat-admin")
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	var starts, ends kadm.ListedOffsets
	if err := waitFor(ctx, "the topic's start and end offsets", 20*time.Second, func() (bool, error) {
		var err error
		if starts, err = adm.ListStartOffsets(ctx, topic); err != nil {
			return false, err
		}
		if ends, err = adm.ListEndOffsets(ctx, topic); err != nil {
			return false, err
		}
		if err := errors.Join(starts.Error(), ends.Error()); err != nil {
			return false, err
		}
		return len(ends[topic]) > 0, nil
	}); err != nil {
		return nil, err
	}
	want := map[int32]int64{} // partition -> end offset still to reach
	startAt := map[int32]kgo.Offset{}
	endOffsets := map[string]int64{}
	for p, o := range ends[topic] {
		endOffsets[strconv.Itoa(int(p))] = o.Offset
		s := starts[topic][p].Offset
		if o.Offset > s {
			want[p] = o.Offset
			startAt[p] = kgo.NewOffset().At(s)
		}
	}
	type readRec struct {
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Value     string `json:"value"`
	}
	out := map[string]any{"topic": topic, "end_offsets": endOffsets}
	records := []readRec{}
	if len(want) > 0 {
		cl, err := newClient("sluice-compat-read-all",
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: startAt}),
			kgo.MetadataMinAge(250*time.Millisecond),
		)
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		next := map[int32]int64{}
		deadline := time.Now().Add(60 * time.Second)
		for !reached(next, want) {
			if time.Now().After(deadline) {
				out["records"], out["next"] = records, next
				return out, fmt.Errorf("read to %v of end offsets %v within 60s", next, want)
			}
			fetched, err := pollBriefly(ctx, cl)
			if err != nil {
				out["records"] = records
				return out, err
			}
			for _, r := range fetched {
				if r.Offset >= want[r.Partition] {
					continue // appended after the end offsets were taken
				}
				records = append(records, readRec{r.Partition, r.Offset, string(r.Value)})
				next[r.Partition] = r.Offset + 1
			}
		}
	}
	sortInLogOrder(records, func(r readRec) (int32, int64) { return r.Partition, r.Offset })
	out["records"] = records
	return out, nil
}
