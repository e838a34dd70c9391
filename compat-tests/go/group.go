package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// seq orders everything the group scenario observes (callbacks, records consumed, the
// leave) across its goroutines.
var seq atomic.Int64

type groupEvent struct {
	Seq        int64   `json:"seq"`
	Member     int     `json:"member"`
	Kind       string  `json:"kind"` // assigned, revoked, lost
	Partitions []int32 `json:"partitions"`
}

type consumedRec struct {
	Seq       int64  `json:"seq"`
	Member    int    `json:"member"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Value     string `json:"value"`
}

type producedRec struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Value     string `json:"value"`
}

// groupLog is what every member of the scenario reports into.
type groupLog struct {
	mu        sync.Mutex
	events    []groupEvent
	consumed  []consumedRec
	errors    []string
	owned     map[int]map[int32]bool
	byMember  map[int]int
	consumedN map[[2]int64]bool
}

func (l *groupLog) event(member int, kind string, assigned map[string][]int32, topic string) {
	ps := append([]int32(nil), assigned[topic]...)
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, groupEvent{seq.Add(1), member, kind, ps})
	if l.owned[member] == nil {
		l.owned[member] = map[int32]bool{}
	}
	for _, p := range ps {
		l.owned[member][p] = kind == "assigned"
	}
}

func (l *groupLog) errorf(format string, args ...any) {
	l.mu.Lock()
	l.errors = append(l.errors, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *groupLog) ownedBy(member int) []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ps []int32
	for p, ok := range l.owned[member] {
		if ok {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// member is one consumer of the group: polls, records, commits what it processed, then lets
// the group rebalance (BlockRebalanceOnPoll: partitions are revoked only between polls).
type member struct {
	id   int
	cl   *kgo.Client
	stop atomic.Bool
	done chan struct{}
}

func startMember(ctx context.Context, id int, group, topic string, log *groupLog) (*member, error) {
	m := &member{id: id, done: make(chan struct{})}
	cl, err := newClient(fmt.Sprintf("sluice-compat-member-%d", id),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.RebalanceTimeout(15*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			log.event(id, "assigned", a, topic)
		}),
		kgo.OnPartitionsRevoked(func(rctx context.Context, c *kgo.Client, r map[string][]int32) {
			// Everything polled is committed before the next poll; this commits nothing
			// unless a poll was cut short.
			if err := c.CommitUncommittedOffsets(rctx); err != nil {
				log.errorf("member %d: commit on revoke: %v", id, err)
			}
			log.event(id, "revoked", r, topic)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			log.event(id, "lost", l, topic)
		}),
	)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for !m.stop.Load() && ctx.Err() == nil {
			pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			fs := cl.PollRecords(pctx, 200)
			cancel()
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					log.errorf("member %d: fetch %s[%d]: %v", id, t, p, err)
				}
			})
			recs := fs.Records()
			if len(recs) > 0 {
				log.mu.Lock()
				for _, r := range recs {
					log.consumed = append(log.consumed, consumedRec{seq.Add(1), id, r.Partition, r.Offset, string(r.Value)})
					log.byMember[id]++
					log.consumedN[[2]int64{int64(r.Partition), r.Offset}] = true
				}
				log.mu.Unlock()
				if err := cl.CommitRecords(ctx, recs...); err != nil {
					log.errorf("member %d: commit: %v", id, err)
				}
			}
			cl.AllowRebalance()
		}
	}()
	return m, nil
}

// leave stops polling, leaves the group (the revoke callback runs first) and closes.
func (m *member) leave(ctx context.Context, log *groupLog) {
	m.stop.Store(true)
	<-m.done
	m.cl.AllowRebalance()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.cl.LeaveGroupContext(lctx); err != nil {
		log.errorf("member %d: leave group: %v", m.id, err)
	}
	m.cl.Close()
}

type describedMember struct {
	ClientID string  `json:"client_id"`
	MemberID string  `json:"member_id"`
	Assigned []int32 `json:"assigned"`
	Owned    []int32 `json:"owned_in_join"`
}

type describedGroup struct {
	State        string            `json:"state"`
	ProtocolType string            `json:"protocol_type"`
	Protocol     string            `json:"protocol"`
	Members      []describedMember `json:"members"`
	Error        string            `json:"error,omitempty"`
}

func describeGroup(ctx context.Context, adm *kadm.Client, group, topic string) (describedGroup, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return describedGroup{}, err
	}
	d := ds[group]
	out := describedGroup{State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol, Error: errName(d.Err)}
	for _, m := range d.Members {
		dm := describedMember{ClientID: m.ClientID, MemberID: m.MemberID, Assigned: []int32{}, Owned: []int32{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				if t.Topic == topic {
					dm.Assigned = append(dm.Assigned, t.Partitions...)
				}
			}
		}
		if j, ok := m.Join.AsConsumer(); ok {
			for _, t := range j.OwnedPartitions {
				if t.Topic == topic {
					dm.Owned = append(dm.Owned, t.Partitions...)
				}
			}
		}
		sort.Slice(dm.Assigned, func(i, j int) bool { return dm.Assigned[i] < dm.Assigned[j] })
		sort.Slice(dm.Owned, func(i, j int) bool { return dm.Owned[i] < dm.Owned[j] })
		out.Members = append(out.Members, dm)
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].ClientID < out.Members[j].ClientID })
	return out, nil
}

func sameInts(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// settled: the group is Stable with exactly the members given, each assigned `each`
// partitions, and each member's callbacks agree with what the group says it was assigned.
func settled(ctx context.Context, adm *kadm.Client, group, topic string, log *groupLog, members []int, each int) (describedGroup, bool, error) {
	d, err := describeGroup(ctx, adm, group, topic)
	if err != nil || d.State != "Stable" || len(d.Members) != len(members) {
		return d, false, err
	}
	for i, m := range members {
		dm := d.Members[i] // sorted by client id, which ends in the member number
		if dm.ClientID != fmt.Sprintf("sluice-compat-member-%d", m) || len(dm.Assigned) != each {
			return d, false, nil
		}
		if !sameInts(dm.Assigned, log.ownedBy(m)) {
			return d, false, nil
		}
	}
	return d, true, nil
}

// waitSettled waits up to 30 s for the group to be settled (see settled) and returns the last
// description.
func waitSettled(ctx context.Context, adm *kadm.Client, group, topic string, log *groupLog, members []int, each int) (describedGroup, error) {
	var d describedGroup
	what := fmt.Sprintf("%d members, %d partitions each, Stable", len(members), each)
	err := waitFor(ctx, what, 30*time.Second, func() (bool, error) {
		var ok bool
		var err error
		d, ok, err = settled(ctx, adm, group, topic, log, members, each)
		return ok, err
	})
	return d, err
}

// cooperativeGroup: three members with the cooperative-sticky balancer on a 6-partition topic
// while a producer writes; one member leaves midway; the others finish. Then the group's
// commits are read back and a new member resumes from them.
func cooperativeGroup(ctx context.Context, _ []string) (any, error) {
	adm, admCl, topic, err := adminWithTopic(ctx, "franz-coop", 6)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	group := uniq("franz-coop-group")
	log := &groupLog{owned: map[int]map[int32]bool{}, byMember: map[int]int{}, consumedN: map[[2]int64]bool{}}
	res := map[string]any{"topic": topic, "group": group}
	fill := func() {
		log.mu.Lock()
		defer log.mu.Unlock()
		res["events"], res["consumed"], res["errors"] = log.events, log.consumed, log.errors
	}

	// The producer: one record every 2 ms round-robin over the partitions until stopped.
	prod, err := newClient("sluice-compat-group-producer", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	var (
		prodMu   sync.Mutex
		produced []producedRec
		prodErrs []string
		stopProd atomic.Bool
		prodDone = make(chan struct{})
	)
	go func() {
		defer close(prodDone)
		for i := 0; !stopProd.Load() && ctx.Err() == nil; i++ {
			r := &kgo.Record{Topic: topic, Partition: int32(i % 6), Value: []byte(fmt.Sprintf("record %d", i))}
			prod.Produce(ctx, r, func(r *kgo.Record, err error) {
				prodMu.Lock()
				defer prodMu.Unlock()
				if err != nil {
					prodErrs = append(prodErrs, err.Error())
					return
				}
				produced = append(produced, producedRec{r.Partition, r.Offset, string(r.Value)})
			})
			time.Sleep(2 * time.Millisecond) // the pace of the stream, not a wait for anything
		}
		if err := prod.Flush(ctx); err != nil {
			prodMu.Lock()
			prodErrs = append(prodErrs, "flush: "+err.Error())
			prodMu.Unlock()
		}
	}()
	producedN := func() int {
		prodMu.Lock()
		defer prodMu.Unlock()
		return len(produced)
	}
	consumedN := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		return len(log.consumed)
	}

	members := map[int]*member{}
	defer func() {
		for _, m := range members {
			m.stop.Store(true)
			m.cl.Close()
		}
	}()
	for id := 0; id < 3; id++ {
		m, err := startMember(ctx, id, group, topic, log)
		if err != nil {
			return nil, err
		}
		members[id] = m
	}

	d3, err := waitSettled(ctx, adm, group, topic, log, []int{0, 1, 2}, 2)
	if err != nil {
		fill()
		res["last_describe"] = d3
		return res, err
	}
	res["describe_three"] = d3
	res["stable_three_seq"] = seq.Add(1)
	if err := waitFor(ctx, "300 records consumed", 20*time.Second, func() (bool, error) {
		return consumedN() >= 300, nil
	}); err != nil {
		fill()
		return res, err
	}

	// Member 2 leaves midway through the stream.
	res["produced_at_leave"] = producedN()
	res["leave_seq"] = seq.Add(1)
	members[2].leave(ctx, log)
	delete(members, 2)
	res["left_seq"] = seq.Add(1)

	d2, err := waitSettled(ctx, adm, group, topic, log, []int{0, 1}, 3)
	if err != nil {
		fill()
		res["last_describe"] = d2
		return res, err
	}
	res["describe_two"] = d2
	res["stable_two_seq"] = seq.Add(1)
	atLeave := res["produced_at_leave"].(int)
	if err := waitFor(ctx, "300 more records produced after the leave", 20*time.Second, func() (bool, error) {
		return producedN() >= atLeave+300, nil
	}); err != nil {
		fill()
		return res, err
	}
	stopProd.Store(true)
	<-prodDone
	prodMu.Lock()
	res["produced"], res["produce_errors"] = produced, prodErrs
	all := append([]producedRec(nil), produced...)
	prodMu.Unlock()
	if err := waitFor(ctx, "every produced record consumed", 20*time.Second, func() (bool, error) {
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, p := range all {
			if !log.consumedN[[2]int64{int64(p.Partition), p.Offset}] {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		fill()
		return res, err
	}

	// The survivors stop and leave; the group's commits must be the log ends.
	for _, id := range []int{0, 1} {
		members[id].leave(ctx, log)
		delete(members, id)
	}
	fill()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return res, fmt.Errorf("ListEndOffsets: %w", err)
	}
	endMap := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { endMap[o.Partition] = o.Offset })
	res["end_offsets"] = endMap
	if res["committed"], err = committedOffsets(ctx, adm, group, topic); err != nil {
		return res, err
	}
	empty, err := describeGroup(ctx, adm, group, topic)
	if err != nil {
		return res, err
	}
	res["describe_after_leaves"] = empty

	// More records, then a new member: it must start exactly at the committed offsets.
	more := perPartition(topic, 6, 5, "after %d/%d")
	if err := prod.ProduceSync(ctx, more...).FirstErr(); err != nil {
		return res, fmt.Errorf("producing after the group: %w", err)
	}
	var after []producedRec
	for _, r := range more {
		after = append(after, producedRec{r.Partition, r.Offset, string(r.Value)})
	}
	res["produced_after"] = after
	before := consumedN()
	m3, err := startMember(ctx, 3, group, topic, log)
	if err != nil {
		return res, err
	}
	members[3] = m3
	werr := waitFor(ctx, "the new member to read 30 records", 20*time.Second, func() (bool, error) {
		return consumedN() >= before+len(more), nil
	})
	m3.leave(ctx, log)
	delete(members, 3)
	log.mu.Lock()
	res["resumed"] = append([]consumedRec(nil), log.consumed[before:]...)
	log.mu.Unlock()
	fill()
	if werr != nil {
		return res, werr
	}
	res["committed_final"], err = committedOffsets(ctx, adm, group, topic)
	return res, err
}

// committedOffsets is the group's committed offset of each partition of topic.
func committedOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("FetchOffsets: %w", err)
	}
	out := map[int32]int64{}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}
