package plivo

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxLiveMPCPages bounds how many pages (20 MPCs each) LiveMPCs fetches per
// status: at most 100 initialized and 100 active MPCs, 10 requests. Beyond
// that the list is marked Truncated.
const maxLiveMPCPages = 5

// MPCStatus is the state of an MPC, in lower case whatever case Plivo
// answered: initialized (created, waiting to start), active or ended.
type MPCStatus string

// MPC statuses.
const (
	MPCInitialized MPCStatus = "initialized"
	MPCActive      MPCStatus = "active"
	MPCEnded       MPCStatus = "ended"
)

// MPCSummary is one MPC of Plivo's list: what a live calls view shows.
// Participants are not part of it (counting them costs a request per MPC).
type MPCSummary struct {
	// Name is the friendly name as a bounded excerpt (MaxNameLength runes,
	// no control or format characters). It may hold characters MPCByName
	// refuses; act on the MPC through MPC, which works whatever the name.
	Name string
	// UUID is the mpc_uuid, in lower case.
	UUID string
	// Status is initialized or active (LiveMPCs lists no other).
	Status MPCStatus
	// Created and Started are creation_time and start_time; zero when Plivo
	// sent null (an initialized MPC has not started) or a time it could not
	// read.
	Created, Started time.Time
}

// MPC returns a reference to the MPC by its uuid.
func (s MPCSummary) MPC() MPC { return MPC{uuid: s.UUID} }

// LiveMPCList is the answer of LiveMPCs.
type LiveMPCList struct {
	// MPCs are the live MPCs: active first, then initialized; newest
	// creation first within each (null creation times last).
	MPCs []MPCSummary
	// Truncated is set when Plivo had more live MPCs than maxLiveMPCPages
	// pages of a status hold; the rest were not fetched.
	Truncated bool
	// Skipped counts the rows left out: an mpc_uuid that is not a uuid
	// (nothing could act on that MPC), a status that is not a live one, or a
	// row that is not an MPC object. Each is logged.
	Skipped int
}

// LiveMPCs lists the account's live MPCs — initialized and active, both
// live to a user — with List MPC (status=initialized, then status=active;
// 20 per page, following the offsets for at most maxLiveMPCPages pages
// each). Every page is a request through the limiter; ctx's deadline
// (CallTimeout when it has none) bounds them all. An MPC that changes from
// initialized to active between the two queries is listed once, as active.
//
// Decoding is tolerant: meta.count or total_count, status in any case, a
// row that cannot be read is skipped (see LiveMPCList.Skipped) rather than
// failing the list.
func (c *Client) LiveMPCs(ctx context.Context) (LiveMPCList, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	var list LiveMPCList
	byUUID := map[string]MPCSummary{}
	for _, status := range []MPCStatus{MPCInitialized, MPCActive} {
		rows, truncated, skipped, e := c.listMPCs(ctx, status)
		if e != nil {
			return LiveMPCList{}, e
		}
		list.Truncated = list.Truncated || truncated
		list.Skipped += skipped
		for _, row := range rows {
			byUUID[row.UUID] = row // the later query (active) wins
		}
	}
	for _, row := range byUUID {
		list.MPCs = append(list.MPCs, row)
	}
	slices.SortFunc(list.MPCs, func(a, b MPCSummary) int {
		return cmp.Or(
			cmp.Compare(liveRank(a.Status), liveRank(b.Status)),
			cmp.Compare(boolRank(a.Created.IsZero()), boolRank(b.Created.IsZero())),
			b.Created.Compare(a.Created),
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.UUID, b.UUID))
	})
	return list, nil
}

func liveRank(s MPCStatus) int {
	if s == MPCActive {
		return 0
	}
	return 1
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// listMPCs fetches the MPCs of one status, page by page.
func (c *Client) listMPCs(ctx context.Context, status MPCStatus) (rows []MPCSummary, truncated bool, skipped int, _ *Error) {
	op := operation{name: "list_mpcs"}
	offset := 0
	for page := 1; ; page++ {
		if page > maxLiveMPCPages {
			return rows, true, skipped, nil
		}
		query := url.Values{"status": {string(status)}, "limit": {"20"}, "offset": {strconv.Itoa(offset)}}.Encode()
		x, e := c.newExchange(op, http.MethodGet, c.accountPath(), query, nil)
		if e != nil {
			return nil, false, 0, e
		}
		resp, e := c.do(ctx, x)
		if e != nil {
			return nil, false, 0, e
		}
		list, err := decodePage[json.RawMessage](resp.body, "MPC list")
		if err != nil {
			return nil, false, 0, &Error{Op: op.String(), Kind: Internal, Status: resp.status,
				Message:  fmt.Sprintf("could not read Plivo's list of %s MPCs (HTTP %d, page %d)", status, resp.status, page),
				Attempts: resp.attempts, Err: err}
		}
		for _, raw := range *list.Objects {
			row, why := c.mpcSummary(raw, status)
			if why != "" {
				skipped++
				c.log.LogAttrs(ctx, slog.LevelWarn, "plivo: MPC list row skipped", slog.String("why", why), slog.String("status", string(status)))
				continue
			}
			rows = append(rows, row)
		}
		next, more := nextOffset(list.Meta, len(*list.Objects), offset)
		if !more {
			return rows, false, skipped, nil
		}
		if next <= offset {
			return nil, false, 0, &Error{Op: op.String(), Kind: Internal,
				Message: fmt.Sprintf("Plivo's MPC list does not advance (offset %d after %d)", next, offset)}
		}
		offset = next
	}
}

// mpcRow is the part of Plivo's MPC object a summary needs.
type mpcRow struct {
	FriendlyName string  `json:"friendly_name"`
	MPCUUID      string  `json:"mpc_uuid"`
	Status       string  `json:"status"`
	CreationTime *string `json:"creation_time"`
	StartTime    *string `json:"start_time"`
}

// mpcSummary reads one row of a list of MPCs of the queried status; it
// returns why a row is skipped ("" when it is not).
func (c *Client) mpcSummary(raw json.RawMessage, queried MPCStatus) (MPCSummary, string) {
	var row mpcRow
	if err := decodeJSON(raw, &row); err != nil {
		return MPCSummary{}, "not an MPC object"
	}
	if !uuidPattern.MatchString(row.MPCUUID) {
		return MPCSummary{}, "mpc_uuid is not a uuid"
	}
	status := MPCStatus(strings.ToLower(strings.TrimSpace(row.Status)))
	if status == "" {
		status = queried
	}
	if status != MPCInitialized && status != MPCActive {
		return MPCSummary{}, "status is not a live one: " + c.excerpt(row.Status, 20)
	}
	return MPCSummary{
		Name:    c.excerpt(row.FriendlyName, MaxNameLength),
		UUID:    strings.ToLower(row.MPCUUID),
		Status:  status,
		Created: parsePlivoTime(row.CreationTime),
		Started: parsePlivoTime(row.StartTime),
	}, ""
}

// plivoTimeLayouts are the forms of Plivo's timestamps:
// "2020-06-03 10:48:43+00:00", and RFC 3339 to be safe.
var plivoTimeLayouts = []string{"2006-01-02 15:04:05-07:00", "2006-01-02 15:04:05Z07:00", time.RFC3339}

// parsePlivoTime reads a Plivo timestamp; null or unreadable is zero.
func parsePlivoTime(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	for _, layout := range plivoTimeLayouts {
		if t, err := time.Parse(layout, strings.TrimSpace(*s)); err == nil {
			return t
		}
	}
	return time.Time{}
}
