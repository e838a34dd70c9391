package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// createTopic creates a topic through kadm and fails on any error.
func createTopic(ctx context.Context, adm *kadm.Client, partitions int32, configs map[string]*string, topic string) error {
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func adminClient(clientID string) (*kadm.Client, *kgo.Client, error) {
	cl, err := newClient(clientID)
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl, nil
}

// adminWithTopic is an admin client and a new topic, uniq(prefix), of `partitions`
// partitions; the caller closes the client (cl).
func adminWithTopic(ctx context.Context, prefix string, partitions int32) (adm *kadm.Client, cl *kgo.Client, topic string, err error) {
	if adm, cl, err = adminClient("sluice-compat-admin"); err != nil {
		return nil, nil, "", err
	}
	topic = uniq(prefix)
	if err := createTopic(ctx, adm, partitions, nil, topic); err != nil {
		cl.Close()
		return nil, nil, "", err
	}
	return adm, cl, topic, nil
}

// perPartition is n records on each of partitions 0..parts-1 of topic, in partition order,
// each valued fmt.Sprintf(format, partition, i).
func perPartition(topic string, parts int32, n int, format string) []*kgo.Record {
	var out []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := 0; i < n; i++ {
			out = append(out, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf(format, p, i))})
		}
	}
	return out
}

// produceSync produces records, each to the partition it names, through a producer of its
// own, and returns once all are acknowledged.
func produceSync(ctx context.Context, records ...*kgo.Record) error {
	prod, err := newClient("sluice-compat-producer", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

// testRecords are records for partitions 0..parts-1: keys (some null, one empty), values that
// compress well on their own (some null or empty, one of 100 KB), headers (a repeated key, an
// empty and a null value) and explicit, distinct timestamps.
func testRecords(topic string, parts, perPartition int, base time.Time) []*kgo.Record {
	var out []*kgo.Record
	for p := 0; p < parts; p++ {
		for i := 0; i < perPartition; i++ {
			r := &kgo.Record{
				Topic:     topic,
				Partition: int32(p),
				Timestamp: base.Add(time.Duration(p*1000+i) * time.Millisecond),
			}
			switch {
			case i%7 == 3:
				r.Key = nil
			case i == 4:
				r.Key = []byte{}
			default:
				r.Key = []byte(fmt.Sprintf("key-%d-%d", p, i))
			}
			switch {
			case i == 5:
				r.Value = nil
			case i == 6:
				r.Value = []byte{}
			case i == perPartition-1 && p == 0:
				r.Value = bytes.Repeat([]byte("a hundred kilobytes of one line. "), 100*1024/33)
			default:
				r.Value = []byte(fmt.Sprintf("value %d of partition %d: %s", i, p, strings.Repeat("sluice ", 40)))
			}
			r.Headers = []kgo.RecordHeader{
				{Key: "trace", Value: []byte(fmt.Sprintf("t-%d", i))},
				{Key: "dup", Value: []byte("first")},
				{Key: "dup", Value: []byte("second")},
				{Key: "empty", Value: []byte{}},
			}
			if i%5 == 0 {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: "null", Value: nil})
			}
			out = append(out, r)
		}
	}
	return out
}

// produceAll produces records through cl (which must use ManualFlushing, so that each
// partition's records go out as one batch) and returns them with their offsets.
func produceAll(ctx context.Context, cl *kgo.Client, records []*kgo.Record) ([]rec, error) {
	errs := make(chan error, len(records))
	for _, r := range records {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { errs <- err })
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	for range records {
		if err := <-errs; err != nil {
			return nil, fmt.Errorf("produce: %w", err)
		}
	}
	out := make([]rec, 0, len(records))
	for _, r := range records {
		x := toRec(r)
		x.Codec = 0
		out = append(out, x)
	}
	return out, nil
}

func counts(recs []rec) map[int32]int {
	n := map[int32]int{}
	for _, r := range recs {
		n[r.Partition]++
	}
	return n
}

// produceConsume <codec>: records with keys, headers and timestamps produced with that codec
// by franz-go's default producer (idempotent, acks=all) onto 3 partitions, one batch each,
// then read back by a direct consumer.
func produceConsume(ctx context.Context, args []string) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("usage: produce_consume none|gzip|snappy|lz4|zstd")
	}
	codec, ok := codecs[args[0]]
	if !ok {
		return nil, fmt.Errorf("unknown codec %q", args[0])
	}
	_, admCl, topic, err := adminWithTopic(ctx, "franz-"+args[0], 3)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	cl, err := newClient("sluice-compat-producer",
		kgo.ProducerBatchCompression(codec),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ManualFlushing(),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	sent, err := produceAll(ctx, cl, testRecords(topic, 3, 30, base))
	if err != nil {
		return nil, err
	}
	got, err := readBack(ctx, topic, counts(sent))
	return map[string]any{"topic": topic, "sent": sent, "got": got}, err
}

// idempotent: franz-go's default producer (idempotent, acks=all) in three ProduceSync rounds
// onto 3 partitions; its producer id and epoch, what it wrote, and DescribeProducers.
func idempotent(ctx context.Context, _ []string) (any, error) {
	adm, admCl, topic, err := adminWithTopic(ctx, "franz-idempotent", 3)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	cl, err := newClient("sluice-compat-idempotent",
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var sent []rec
	for round := 0; round < 3; round++ {
		var rs []*kgo.Record
		for p := int32(0); p < 3; p++ {
			for i := 0; i < 20; i++ {
				rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", i)),
					Value: []byte(fmt.Sprintf("round %d record %d of partition %d", round, i, p))})
			}
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		for _, r := range rs {
			sent = append(sent, toRec(r))
		}
	}
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return nil, fmt.Errorf("ProducerID: %w", err)
	}
	got, err := readBack(ctx, topic, counts(sent))
	res := map[string]any{"topic": topic, "producer_id": id, "producer_epoch": epoch, "sent": sent, "got": got}
	if err != nil {
		return res, err
	}
	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}, 2: {}}})
	if err != nil {
		return res, fmt.Errorf("DescribeProducers: %w", err)
	}
	var producers []map[string]any
	for _, t := range described {
		for _, p := range t.Partitions {
			if p.Err != nil {
				producers = append(producers, map[string]any{"partition": p.Partition, "error": errName(p.Err)})
			}
			for _, a := range p.ActiveProducers {
				producers = append(producers, map[string]any{
					"partition": p.Partition, "producer_id": a.ProducerID, "producer_epoch": a.ProducerEpoch,
					"last_sequence": a.LastSequence, "last_timestamp": a.LastTimestamp,
					"coordinator_epoch": a.CoordinatorEpoch, "current_txn_start_offset": a.CurrentTxnStartOffset,
				})
			}
		}
	}
	res["describe_producers"] = producers
	return res, nil
}

// acks: a non-idempotent producer with acks=0 and another with acks=1, then what a consumer
// reads of both.
func acks(ctx context.Context, _ []string) (any, error) {
	adm, admCl, topic, err := adminWithTopic(ctx, "franz-acks", 1)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	res := map[string]any{"topic": topic}
	var sent []rec
	for _, a := range []struct {
		name string
		acks kgo.Acks
	}{{"0", kgo.NoAck()}, {"1", kgo.LeaderAck()}} {
		cl, err := newClient("sluice-compat-acks"+a.name, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(a.acks))
		if err != nil {
			return nil, err
		}
		var rs []*kgo.Record
		for i := 0; i < 10; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("acks=%s #%d", a.name, i))})
		}
		results := cl.ProduceSync(ctx, rs...)
		cl.Close()
		if err := results.FirstErr(); err != nil {
			return res, fmt.Errorf("acks=%s: %w", a.name, err)
		}
		var offsets []int64
		for _, r := range rs {
			offsets = append(offsets, r.Offset)
			sent = append(sent, toRec(r))
		}
		res["offsets_acks_"+a.name] = offsets
		// acks=0 gets no answer: wait for the records to be in the log before the next client
		// writes on another connection.
		want := int64(len(sent))
		if err := waitFor(ctx, "acks="+a.name+" records in the log", 10*time.Second, func() (bool, error) {
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return false, err
			}
			o, _ := ends.Lookup(topic, 0)
			return o.Err == nil && o.Offset >= want, nil
		}); err != nil {
			return res, err
		}
	}
	got, err := readBack(ctx, topic, map[int32]int{0: len(sent)})
	res["sent"], res["got"] = sent, got
	return res, err
}
