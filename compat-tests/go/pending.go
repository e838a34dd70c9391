package main

// Scenarios for what Sluice does not serve yet (each an xfail in test_franz_go.py naming its
// issue): transactions, KIP-848 consumer groups, DeleteRecords, ACLs.

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// transactions: a transactional producer commits 5 records and aborts 3; read_committed and
// read_uncommitted consumers read them; then a GroupTransactSession consumes the committed
// ones and produces them to a second topic in one transaction with its offsets.
func transactions(ctx context.Context, _ []string) (any, error) {
	adm, cl, err := adminClient("sluice-compat-admin")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	in, out, group := uniq("franz-txn-in"), uniq("franz-txn-out"), uniq("franz-txn-group")
	for _, t := range []string{in, out} {
		if err := createTopic(ctx, adm, 1, nil, t); err != nil {
			return nil, err
		}
	}
	r := map[string]any{"input": in, "output": out, "group": group}
	txnID := uniq("franz-txn")
	prod, err := newClient("sluice-compat-txn-producer", kgo.TransactionalID(txnID), kgo.TransactionTimeout(10*time.Second))
	if err != nil {
		return r, err
	}
	defer prod.Close()
	for _, step := range []struct {
		n      int
		commit kgo.TransactionEndTry
		label  string
	}{{5, kgo.TryCommit, "committed"}, {3, kgo.TryAbort, "aborted"}} {
		if err := prod.BeginTransaction(); err != nil {
			return r, fmt.Errorf("BeginTransaction: %w", err)
		}
		var rs []*kgo.Record
		for i := 0; i < step.n; i++ {
			rs = append(rs, &kgo.Record{Topic: in, Value: []byte(fmt.Sprintf("%s %d", step.label, i))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return r, fmt.Errorf("transactional produce (%s): %w", step.label, err)
		}
		if err := prod.EndTransaction(ctx, step.commit); err != nil {
			return r, fmt.Errorf("EndTransaction (%s): %w", step.label, err)
		}
	}
	committed, err := readBack(ctx, in, map[int32]int{0: 5}, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	r["read_committed"] = committed
	if err != nil {
		return r, fmt.Errorf("read_committed: %w", err)
	}
	uncommitted, err := readBack(ctx, in, map[int32]int{0: 8}, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	r["read_uncommitted"] = uncommitted
	if err != nil {
		return r, fmt.Errorf("read_uncommitted: %w", err)
	}
	// EndTxn answers before the markers are written: wait for the abort marker (offset 9).
	if err := waitFor(ctx, "the abort marker and the last stable offset at 10", 10*time.Second, func() (bool, error) {
		var err error
		if r["end_offsets"], err = listedOf(adm.ListEndOffsets(ctx, in)); err != nil {
			return false, err
		}
		if r["last_stable_offsets"], err = listedOf(adm.ListCommittedOffsets(ctx, in)); err != nil {
			return false, err
		}
		return r["end_offsets"].(map[int32]listedView)[0].Offset >= 10 &&
			r["last_stable_offsets"].(map[int32]listedView)[0].Offset >= 10, nil
	}); err != nil {
		return r, err
	}
	if err := waitFor(ctx, "the transaction to complete", 10*time.Second, func() (bool, error) {
		txns, err := adm.DescribeTransactions(ctx, txnID)
		if err != nil {
			return false, fmt.Errorf("DescribeTransactions: %w", err)
		}
		t := txns[txnID]
		r["describe_transaction"] = map[string]any{"state": t.State, "error": errName(t.Err)}
		return t.Err != nil || (t.State != "PrepareAbort" && t.State != "PrepareCommit"), nil
	}); err != nil {
		return r, err
	}

	// Consume-transform-produce, exactly once.
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(bootstrap), kgo.ClientID("sluice-compat-txn-session"), kgo.WithLogger(versions),
		kgo.TransactionalID(uniq("franz-txn-session")), kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return r, err
	}
	defer sess.Close()
	moved := 0
	deadline := time.Now().Add(15 * time.Second)
	for moved < 5 {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("GroupTransactSession moved %d of 5 records within 15s", moved)
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := sess.PollFetches(pctx)
		cancel()
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return r, fmt.Errorf("session Begin: %w", err)
		}
		for _, rec := range recs {
			sess.Produce(ctx, &kgo.Record{Topic: out, Value: append([]byte("moved "), rec.Value...)}, nil)
		}
		ok, err := sess.End(ctx, kgo.TryCommit)
		if err != nil || !ok {
			return r, fmt.Errorf("session End: committed=%v err=%v", ok, err)
		}
		moved += len(recs)
	}
	r["moved"] = moved
	outRecs, err := readBack(ctx, out, map[int32]int{0: 5}, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	r["output"] = outRecs
	if err != nil {
		return r, fmt.Errorf("reading the output: %w", err)
	}
	if r["group_offsets"], err = offsetsOf(adm.FetchOffsets(ctx, group)); err != nil {
		return r, err
	}
	return r, nil
}

// kip848: two members with franz-go's ServerSideBalancer (KIP-848, ConsumerGroupHeartbeat)
// on a 4-partition topic. franz-go falls back to the classic protocol when the broker does not
// advertise ConsumerGroupHeartbeat v1, so the scenario reports what kind of group it made.
func kip848(ctx context.Context, _ []string) (any, error) {
	adm, cl, topic, err := adminWithTopic(ctx, "franz-848", 4)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	group := uniq("franz-848-group")
	r := map[string]any{"topic": topic, "group": group}
	apis, err := adm.ApiVersions(ctx)
	if err != nil {
		return r, err
	}
	for _, b := range apis {
		min, max, ok := b.KeyVersions(kmsg.ConsumerGroupHeartbeat.Int16())
		r["consumer_group_heartbeat"] = map[string]any{"served": ok, "min": min, "max": max}
	}
	if err := produceSync(ctx, perPartition(topic, 4, 5, "%d-%d")...); err != nil {
		return r, err
	}
	var members []*kgo.Client
	defer func() {
		for _, m := range members {
			m.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		m, err := groupMember(fmt.Sprintf("sluice-compat-848-member-%d", i), group, topic,
			kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
		if err != nil {
			return r, err
		}
		members = append(members, m)
	}
	total := 0
	deadline := time.Now().Add(15 * time.Second)
	for total < 20 && time.Now().Before(deadline) {
		for _, m := range members {
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			total += len(m.PollFetches(pctx).Records())
			cancel()
		}
	}
	r["consumed"] = total
	listed, err := adm.ListGroupsByType(ctx, []string{"consumer"})
	if err != nil {
		r["list_consumer_groups_error"] = errName(err)
	}
	if g, ok := listed[group]; ok {
		r["listed_as_consumer"] = map[string]any{"group_type": g.GroupType, "state": g.State}
	}
	if _, err := adm.DescribeConsumerGroups(ctx, group); err != nil {
		r["describe_consumer_groups_error"] = errName(err)
		return r, nil
	}
	// Both members reconciled: Stable, each with some of the partitions.
	err = waitFor(ctx, "the consumer group Stable with both members assigned", 15*time.Second, func() (bool, error) {
		described, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return false, err
		}
		d := described[group]
		var assigned []int32
		each := true
		for _, m := range d.Members {
			n := 0
			for _, ps := range m.Assignment {
				for p := range ps {
					assigned = append(assigned, p)
					n++
				}
			}
			each = each && n > 0
		}
		sort.Slice(assigned, func(i, j int) bool { return assigned[i] < assigned[j] })
		r["described"] = map[string]any{"state": d.State, "assignor": d.AssignorName, "members": len(d.Members),
			"assigned": assigned, "error": errName(d.Err)}
		return d.Err == nil && d.State == "Stable" && len(d.Members) == 2 && each, nil
	})
	return r, err
}

// deleteRecords: DeleteRecords moves a partition's log start; offsets before it are gone.
func deleteRecords(ctx context.Context, _ []string) (any, error) {
	adm, cl, topic, err := adminWithTopic(ctx, "franz-delete-records", 1)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := 0; i < 10; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return nil, err
	}
	r := map[string]any{"topic": topic}
	to := kadm.Offsets{}
	to.AddOffset(topic, 0, 4, -1)
	del, err := adm.DeleteRecords(ctx, to)
	if err != nil {
		return r, fmt.Errorf("DeleteRecords: %w", err)
	}
	d := del[topic][0]
	r["delete"] = map[string]any{"low_watermark": d.LowWatermark, "error": errName(d.Err)}
	if r["start_after"], err = listedOf(adm.ListStartOffsets(ctx, topic)); err != nil {
		return r, err
	}
	got, err := readBack(ctx, topic, map[int32]int{0: 6})
	r["read"] = got
	if err != nil {
		return r, err
	}
	beyond := kadm.Offsets{}
	beyond.AddOffset(topic, 0, 50, -1)
	del, err = adm.DeleteRecords(ctx, beyond)
	if err != nil {
		return r, fmt.Errorf("DeleteRecords beyond the end: %w", err)
	}
	r["delete_beyond_end"] = errName(del[topic][0].Err)
	return r, nil
}

// acls: create an ACL, describe it, delete it, describe nothing.
func acls(ctx context.Context, _ []string) (any, error) {
	adm, cl, err := adminClient("sluice-compat-admin")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	topic := uniq("franz-acl")
	r := map[string]any{"topic": topic}
	b := kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics(topic).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	created, err := adm.CreateACLs(ctx, b)
	if err != nil {
		return r, fmt.Errorf("CreateACLs: %w", err)
	}
	var createErrs []string
	for _, c := range created {
		createErrs = append(createErrs, errName(c.Err))
	}
	r["create"] = createErrs
	describe := func() ([]string, error) {
		f := kadm.NewACLs().AnyResource(topic).Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)
		ds, err := adm.DescribeACLs(ctx, f)
		if err != nil {
			return nil, err
		}
		out := []string{}
		for _, d := range ds {
			if d.Err != nil {
				return nil, d.Err
			}
			for _, a := range d.Described {
				out = append(out, fmt.Sprintf("%s@%s %s %s %s:%s", a.Principal, a.Host, a.Permission, a.Operation, a.Type, a.Name))
			}
		}
		sort.Strings(out)
		return out, nil
	}
	if r["described"], err = describe(); err != nil {
		return r, fmt.Errorf("DescribeACLs: %w", err)
	}
	deleted, err := adm.DeleteACLs(ctx, b)
	if err != nil {
		return r, fmt.Errorf("DeleteACLs: %w", err)
	}
	n := 0
	for _, d := range deleted {
		if d.Err != nil {
			return r, fmt.Errorf("DeleteACLs: %w", d.Err)
		}
		n += len(d.Deleted)
	}
	r["deleted"] = n
	if r["described_after_delete"], err = describe(); err != nil {
		return r, fmt.Errorf("DescribeACLs: %w", err)
	}
	return r, nil
}
