public import TandemCore
import TandemProtocol

/// What a pull reads, whatever the store (PROTOCOL.md §9.4): all of it from one snapshot,
/// so a revocation (of a token, a device or a consent) that commits while a pull runs is
/// either wholly before it or wholly after it. Written against `PullReads`.
enum PullRules {
    /// First, with a `check`, the caller's token, which must still name the same principal
    /// and not be revoked (else `ServerError.unauthorized` or `.revoked`, and nothing is
    /// read); then the policy's grants, the epoch and each grant's channel's head; then for
    /// each grant a page of its channel after the position `starts` gives it (called once,
    /// with those grants, that epoch and those heads), keeping only what the grant carries,
    /// the pages reading at most `limit` held changes and about `maxBytes` of them in all
    /// (`shares`); last the caller's replica's mark and its device's re-push window.
    static func read(
        for principal: Principal, policy: any SharingPolicy, memo: SharingMemo? = nil, limit: Int,
        maxBytes: Int = SyncServer.Limits.defaultPullAnswerBytes, check: TokenCheck?,
        starts: ([Grant], _ epoch: String, _ heads: [Int64]) -> [Int64], in store: some PullReads
    ) throws -> PullSnapshot {
        if let check, try store.principal(tokenHash: check.tokenHash) != check.principal { throw ServerError.unauthorized }
        // The grants and the directory of this snapshot: kept from an earlier pull only while
        // the snapshot's sharing version is the one they were evaluated at.
        let view = try memo?.view(for: principal, policy: policy, in: store) ?? SharingView.evaluate(for: principal, policy: policy, in: store).0
        let grants = view.grants
        let epoch = try store.epoch()
        // A one-record grant's head is its record's: a cursor then tells nothing of the
        // channel's other changes (not even, by `epochChanged`, how many there are).
        let channelHeads = try store.channelHeads(of: Set(grants.filter { $0.record == nil }.map(\.channel)))
        let heads = try grants.map { grant in try grant.record.map { try store.recordHead($0) } ?? channelHeads[grant.channel] ?? 0 }
        let positions = starts(grants, epoch, heads)
        let shares = shares(of: limit, positions: positions, heads: heads, oneRecord: grants.map { $0.record != nil })
        // A subscription at its head has nothing after it in this snapshot: no read; nor has
        // one the answer has no room left for. The channels' pages are read together (one
        // statement on PostgreSQL), a record's alone.
        let reading = grants.indices.filter { shares[$0] > 0 && grants[$0].record == nil }
        var rows: [Int: [HeldRow]] = [:]
        for (index, read) in zip(reading, try store.held(in: reading.map { (channel: grants[$0].channel, after: positions[$0], limit: shares[$0] + 1) })) {
            rows[index] = read
        }
        var pages: [ChannelPage] = []
        pages.reserveCapacity(grants.count)
        var bytes = ByteBudget(left: maxBytes)
        for (index, (grant, start)) in zip(grants, positions).enumerated() {
            if start == heads[index] {
                pages.append(ChannelPage(changes: [], last: start, more: false))
            } else if shares[index] == 0 {
                pages.append(ChannelPage(changes: [], last: start, more: true))
            } else if let read = rows[index] {
                pages.append(try page(of: grant, after: start, limit: shares[index], rows: read, bytes: &bytes))
            } else {
                pages.append(try page(of: grant, after: start, limit: shares[index], in: store, bytes: &bytes))
            }
        }
        let mark = try principal.replica.flatMap { try store.mark(of: $0) }
        let repush = try principal.device.flatMap { try store.repushEpoch(of: $0) }
        // A chain pruned to nothing shows its start as its head (§9.16).
        let accounting = try (store.accountingHead(of: principal.member) ?? store.chainStart(of: principal.member)?.link)
            .map { AccountingHead(sequence: $0.sequence, hash: hexString($0.hash)) }
        return PullSnapshot(
            view: view, epoch: epoch, heads: heads, mark: mark, repushEpoch: repush, pages: pages, accounting: accounting)
    }

    /// What is left of an answer's bytes, and whether it took a change yet.
    struct ByteBudget {
        var left: Int
        var taken = false
    }

    /// How many held changes each subscription's page may read: `limit` bounds the whole
    /// answer (PROTOCOL.md §9.4). Channel subscriptions past their cursor take it in grant
    /// order, each at most what its channel numbered past the cursor (its head less its
    /// position, the most it can hold there); one left with 0 gets an empty page with
    /// `more`. A mentor's first answer is then one page's worth, not one per patient: the
    /// device starts merging at once, and the server never builds an answer of every
    /// patient's page at the largest size. A one-record subscription (a shared note) reads
    /// its record's few changes (up to `limit`) and takes nothing from the others: its
    /// head is the record's last number in a whole channel, so the difference would count
    /// every other record's changes.
    static func shares(of limit: Int, positions: [Int64], heads: [Int64], oneRecord: [Bool]) -> [Int] {
        var left = max(1, limit)
        return zip(zip(positions, heads), oneRecord).map { position, record in
            let (start, head) = position
            guard start != head else { return 0 }
            if record { return max(1, limit) }
            guard left > 0 else { return 0 }
            let share = Int(clamping: min(Int64(left), max(1, head &- start)))
            left -= share
            return share
        }
    }

    /// One page of a grant's channel after `sequence`, keeping only what the grant carries:
    /// the projection decides per field, and what it does not carry is never sent. The page
    /// ends after `limit` held changes, carried or not, so its cursor moves past what the
    /// projection leaves out.
    static func page(of grant: Grant, after sequence: Int64, limit: Int, in store: some PullReads, bytes: inout ByteBudget) throws -> ChannelPage {
        let rows = try grant.record.map { try store.held(of: $0, in: grant.channel, after: sequence, limit: limit + 1) }
            ?? store.held(in: grant.channel, after: sequence, limit: limit + 1)
        return try page(of: grant, after: sequence, limit: limit, rows: rows, bytes: &bytes)
    }

    /// The page of `rows` (at most `limit + 1` held changes after `sequence`, read for it).
    /// It ends early, with `more`, where a change would take the answer past `bytes` (what
    /// is left of its byte budget), unless the answer has nothing yet: each answer carries
    /// at least one change, so a pull always moves on.
    static func page(of grant: Grant, after sequence: Int64, limit: Int, rows: [HeldRow], bytes: inout ByteBudget) throws -> ChannelPage {
        var changes: [Change] = []
        var last = sequence
        for row in rows.prefix(limit) {
            if row.change.count > bytes.left, bytes.taken {
                return ChannelPage(changes: changes, last: last, more: true)
            }
            bytes.left -= row.change.count
            bytes.taken = true
            last = row.sequence
            let change = try Change(canonicalBytes: row.change)
            guard grant.carries(row.collection, field: change.field) else { continue }
            changes.append(change)
        }
        return ChannelPage(changes: changes, last: last, more: rows.count > limit)
    }
}

extension ServerStorage {
    /// A pull's reads from one snapshot of the store (`PullRules.read`).
    public func pull(
        for principal: Principal, policy: any SharingPolicy, memo: SharingMemo? = nil, limit: Int,
        maxBytes: Int = SyncServer.Limits.defaultPullAnswerBytes, check: TokenCheck?,
        starts: @escaping @Sendable ([Grant], _ epoch: String, _ heads: [Int64]) -> [Int64]
    ) async throws -> PullSnapshot {
        try await read { store in
            try PullRules.read(for: principal, policy: policy, memo: memo, limit: limit, maxBytes: maxBytes, check: check, starts: starts, in: store)
        }
    }
}
