package import TandemCore
import TandemProtocol

/// One device's batch, as the push rules take it.
package struct PushRequest: Sendable {
    package var changes: [Change]
    package var principal: Principal
    package var replica: ReplicaID
    package var repush: Bool
    package var nowMillis: UInt64
    package var maxSkewMillis: UInt64
    package var quotaBytes: Int64

    package init(
        changes: [Change], principal: Principal, replica: ReplicaID, repush: Bool, nowMillis: UInt64, maxSkewMillis: UInt64, quotaBytes: Int64
    ) {
        self.changes = changes
        self.principal = principal
        self.replica = replica
        self.repush = repush
        self.nowMillis = nowMillis
        self.maxSkewMillis = maxSkewMillis
        self.quotaBytes = quotaBytes
    }
}

/// What the server does with a pushed batch, whatever the store (PROTOCOL.md §9.3): which
/// changes it refuses and why, which it recognizes as replays, how it merges the rest with
/// `TandemCore`'s rules and in which channel each held change is numbered. Written against
/// `PushWrites`: the store opens the transaction (and, for a group commit, a savepoint per
/// batch) and commits it; these rules never see SQL.
package enum PushRules {
    /// Validates one batch and merges it. Throws `ServerError.refused` (before writing
    /// anything) when any change is refused, and `ServerError.overQuota` after writing: the
    /// caller rolls the batch back.
    package static func apply(_ batch: PushRequest, in store: some PushWrites) throws -> PushOutcome {
        let changes = batch.changes, principal = batch.principal, replica = batch.replica
        let repush = batch.repush, nowMillis = batch.nowMillis, maxSkewMillis = batch.maxSkewMillis
        // What the batch's checks read first, in sets, told to the store at once: every
        // replica's mark, the records it names, the roles of the members its creates name
        // (a note's patient, a consent's).
        let creates = changes.filter { $0.kind == .create }
        let ahead = PushReadAhead(
            marks: Set(changes.map(\.replica)).union([replica]), records: Set(changes.map(\.record)),
            roles: Set(creates.flatMap(Self.namedMembers)), channel: principal.member)
        try store.readAhead(ahead)
        if repush {
            // Only a device told `epochChanged` re-pushes, until its next pull (§9.9).
            let window = try principal.device.flatMap { try store.repushEpoch(of: $0) }
            guard let window, try window == store.epoch() else {
                throw ServerError.badRequest("Tandem-Repush is only for a device re-pushing after the server was restored; pull first (PROTOCOL.md §9.9).")
            }
        }
        var marks = try store.marks(of: ahead.marks)
        // (Re-push only) whose the other replicas are.
        let others = repush ? try store.activeMembers(of: Set(changes.lazy.map(\.replica).filter { $0 != replica })) : [:]
        // A revoked device's changes are never taken, not even in a re-push.
        func belongsToMember(_ replica: ReplicaID) -> Bool { others[replica] == principal.member }
        // Every change the server accepted from a replica is at or below that replica's mark,
        // so only there can a change be a replay.
        let acceptedDigests = try store.acceptedDigests(of: Set(changes.lazy.filter { change in
            marks[change.replica].map { change.timestamp <= $0 } ?? false
        }.map(\.id)))
        let stored = try store.records(ahead.records)
        let roles = try store.roles(of: ahead.roles)
        // A mentor's patients matter only to a batch that creates something (a note).
        let patients = principal.role == .mentor && !creates.isEmpty ? try store.patients(of: principal.member) : []
        // A patient's care team matters only to a batch that grants a consent.
        let grantsConsent = creates.contains { $0.value.mapValue?[CreateKey.collection]?.stringValue == CollectionName.consent.rawValue }
        let team = principal.role == .patient && grantsConsent ? try store.careTeam(of: principal.member) : []
        // A refusal of what the pusher may not do (not of what is malformed or stale): the
        // batch is then answered 403, not 409.
        var forbidden = false
        // The records this batch creates.
        var owners: [RecordID: (owner: MemberID, collection: CollectionName)] = [:]
        var refusals: [Refusal] = []
        var accepted: [Change] = []
        var replayed = 0
        // The digest of each change this batch takes, by id: a second change under one id
        // in the same batch is told apart as it would be against the store.
        var taken: [ChangeID: [UInt8]] = [:]
        func refuse(_ change: Change, _ reason: String, permanent: Bool, withMark: Bool = false) {
            guard refusals.count < 1000 else { return }
            refusals.append(.init(
                change: ChangeKey.text(of: change.id), reason: reason, permanent: permanent,
                mark: withMark ? marks[change.replica].map(ChangeKey.text(of:)) : nil))
        }
        for change in changes {
            // A re-push after a restore may carry the member's other devices' changes.
            let allowed = change.replica == replica || (repush && belongsToMember(change.replica))
            guard allowed else {
                refuse(change, repush ? "the change's replica is not this member's" : "the change's replica is not this device's", permanent: true)
                forbidden = true
                continue
            }
            // A change at or below its replica's mark is a replay only when the server
            // accepted that very change (same id, same digest: `accepted`); another change
            // under an accepted id is a new write at an old id (a device whose clock went
            // back, say from a restored home), refused so the device re-stamps it above
            // the mark. So is an id at or below the mark never accepted: taken as it is, it
            // would lose to the replica's later writes of the same field, and the person's
            // edit would come back undone. Only a re-push after a restore (§9.9), whose
            // changes the restored store may lack, takes such ids as they are (§9.3).
            let digest = Secrets.changeDigest(change.canonicalBytes)
            if let earlier = taken[change.id] {
                if earlier == digest { replayed += 1 } else {
                    refuse(change, RefusalReason.idReused, permanent: false, withMark: true)
                }
                continue
            }
            if let mark = marks[change.replica], change.timestamp <= mark {
                let known = acceptedDigests[change.id]
                if let known, known == digest {
                    replayed += 1
                    continue
                }
                if known != nil || !repush {
                    refuse(change, RefusalReason.idReused, permanent: false, withMark: true)
                    continue
                }
            }
            if change.timestamp.wallMillis > nowMillis + maxSkewMillis {
                refuse(change, RefusalReason.clockSkew, permanent: false, withMark: true)
                continue
            }
            let owner: (owner: MemberID, collection: CollectionName)
            if change.kind == .create {
                let known = owners[change.record] != nil || stored[change.record] != nil
                guard !known else {
                    refuse(change, "the record exists already; a record has one create", permanent: true)
                    continue
                }
                guard case .string(let name)? = change.value.mapValue?[CreateKey.collection] else {
                    refuse(change, "a create names its collection", permanent: true)
                    continue
                }
                owner = (principal.member, CollectionName(name))
                guard !Schema.serverAuthoritative.contains(owner.collection) else {
                    refuse(change, "\(name) records are the server's", permanent: true)
                    continue
                }
                owners[change.record] = owner
            } else {
                guard let known = owners[change.record] ?? stored[change.record].map({ ($0.owner, $0.collection) }) else {
                    refuse(change, RefusalReason.unknownRecord, permanent: true)
                    continue
                }
                owner = known
            }
            // Another member's record is answered as a missing one: a guessed id reveals nothing.
            guard owner.owner == principal.member else {
                refuse(change, RefusalReason.unknownRecord, permanent: true)
                continue
            }
            do throws(TandemCoreError) {
                try Schema.validate(change, in: owner.collection)
            } catch {
                refuse(change, error.description, permanent: true)
                continue
            }
            if change.kind == .create, let why = Self.forbidden(create: change, of: owner.collection, by: principal, roles: roles, patients: patients, team: team) {
                refuse(change, why, permanent: true)
                forbidden = true
                continue
            }
            accepted.append(change)
            taken[change.id] = digest
        }
        guard refusals.isEmpty else {
            throw forbidden ? ServerError.forbiddenChanges(refusals, serverTime: nowMillis) : ServerError.refused(refusals, serverTime: nowMillis)
        }
        // New records get the next numbers: their held changes go at the end.
        var records: [RecordID: StoredRecord] = [:]
        for (record, owner) in owners {
            records[record] = try store.insertRecord(record, owner: owner.owner, collection: owner.collection)
        }
        for change in accepted where records[change.record] == nil { records[change.record] = stored[change.record] }
        // A device's changes all go to its member's channel (other members' records are
        // refused above), and sequence numbers are handed out in the writer's order, so
        // what the channel gains between these two reads is this batch alone.
        let channelBefore = try store.channelHead(principal.member)
        let (grown, removedText) = try merge(accepted, records: records, created: Set(owners.keys), nowMillis: nowMillis, in: store)
        // Every accepted change is the member's: the quota counts their channel's held bytes.
        if grown != 0 {
            let usage = try store.usage(of: principal.member)
            guard grown < 0 || usage + grown <= batch.quotaBytes else { throw ServerError.overQuota(bytes: batch.quotaBytes) }
            try store.setUsage(max(0, usage + grown), of: principal.member)
        }
        for (id, digest) in taken { try store.recordAccepted(id, digest: digest) }
        let channelAfter = try store.channelHead(principal.member)
        for (pushed, changes) in Dictionary(grouping: accepted, by: \.replica) {
            guard let highest = changes.map(\.timestamp).max(), highest > marks[pushed] ?? .zero else { continue }
            try store.setMark(highest, of: pushed)
            marks[pushed] = highest
        }
        let step = channelAfter > channelBefore ? ChannelStep(epoch: try store.epoch(), from: channelBefore, to: channelAfter) : nil
        let pusherMark = marks[replica]
        var outcome = PushOutcome(accepted: accepted.count, replayed: replayed, ownChannel: step, mark: pusherMark)
        outcome.removedText = removedText
        return outcome
    }

    /// The members a create names: a note's patient, a consent's patient and recipient.
    static func namedMembers(_ create: Change) -> [MemberID] {
        guard let fields = create.value.mapValue else { return [] }
        return ["patient", "recipient"].compactMap { key in fields[key]?.bytesValue.flatMap { try? MemberID(bytes: $0) } }
    }

    /// Why `principal` may not create this record, in words for the person (nil: they may).
    /// Only a patient writes journal entries and grants consents, in their own name, to
    /// a member of their care team; only a mentor writes notes, about a patient assigned to
    /// them. `roles` holds the role of every member the create names who exists; `patients`
    /// the patients assigned to the pusher; `team` the pusher's care team.
    static func forbidden(
        create: Change, of collection: CollectionName, by principal: Principal, roles: [MemberID: Role], patients: Set<MemberID>,
        team: Set<MemberID>
    ) -> String? {
        let fields = create.value.mapValue ?? [:]
        func member(_ key: String) -> MemberID? { fields[key]?.bytesValue.flatMap { try? MemberID(bytes: $0) } }
        switch collection {
        case .journal:
            return principal.role == .patient ? nil : "only a patient writes journal entries"
        case .consent:
            guard principal.role == .patient else { return "only a patient grants consent" }
            guard member("patient") == principal.member else { return "a consent's patient is the member who grants it" }
            let scope = fields["scope"]?.stringValue.flatMap(ConsentScope.init(rawValue:))
            // Counting in the center's statistics is consented to the center itself, and
            // only that is (PROTOCOL.md §6.3).
            if scope == .aggregate || member("recipient") == .center {
                return scope == .aggregate && member("recipient") == .center ? nil : "an aggregate consent, and only it, is granted to the center"
            }
            guard let recipient = member("recipient"), recipient != principal.member else { return "a consent's recipient is another member" }
            guard roles[recipient] != nil else { return "the consent's recipient is not a member of this center" }
            guard team.contains(recipient) else {
                return "a consent's recipient must be in your care team (your assigned mentors and their supervisors)"
            }
            return nil
        case .note:
            guard principal.role == .mentor else { return "only a mentor writes notes" }
            guard let patient = member("patient"), roles[patient] == .patient else { return "the note's patient is not a patient of this center" }
            guard patients.contains(patient) else { return "the note's patient is not assigned to this mentor (tandem admin assign)" }
            return nil
        default:
            return nil
        }
    }

    /// Merges accepted changes with `TandemCore`'s rules; every field whose state changed
    /// gets its held changes replaced, under new sequence numbers, in its owner's channel.
    /// `records` are the records the caller already knows; `created` the records this batch
    /// creates, which hold nothing yet (nothing to read, nothing to delete).
    /// - Returns: how many bytes of held changes the merge added (negative: freed), and
    ///   whether it removed text (a superseded or deleted value that is a string), which
    ///   must then leave the store's files.
    @discardableResult
    static func merge(
        _ changes: [Change], records: [RecordID: StoredRecord], created: Set<RecordID>, nowMillis: UInt64? = nil, in store: some PushWrites
    ) throws -> (grown: Int64, removedText: Bool) {
        var ids: [RecordID] = []
        var seen = Set<RecordID>()
        for change in changes where seen.insert(change.record).inserted { ids.append(change.record) }
        var before = ReplicaState()
        let known = records
        let existing = ids.filter { !created.contains($0) && known[$0] != nil }
        for change in try store.heldChanges(of: existing.compactMap { known[$0] }) { before.apply(change) }
        for (record, field, context) in try store.covered(of: existing) { before.joinCovered(context, record: record, field: field) }
        var after = before
        var touched = Set<RecordID>()
        for change in changes where after.apply(change) { touched.insert(change.record) }
        guard !touched.isEmpty else { return (0, false) }
        var grown: Int64 = 0
        var removedText = false
        func size(_ changes: [Change]) -> Int64 { changes.reduce(0) { $0 + Int64($1.canonicalBytes.count) } }
        func noteRemoved(_ changes: [Change], keeping kept: [Change] = []) {
            if !removedText, changes.contains(where: { if case .string = $0.value { !kept.contains($0) } else { false } }) { removedText = true }
        }
        // Each channel numbers its own changes (PROTOCOL.md §9.4a).
        var heads: [MemberID: Int64] = [:]
        for id in ids where touched.contains(id) {
            guard let new = after[id], let stored = known[id] else { continue }
            let owner = stored.owner
            let old = before[id]
            func replace(field: FieldName, kind: MergeKind, with held: [Change], replacing previous: [Change]) throws {
                grown += size(held) - size(previous)
                noteRemoved(previous, keeping: held)
                if old != nil { try store.deleteHeld(of: stored, field: field, kind: kind) }
                if heads[owner] == nil { heads[owner] = try store.channelHead(owner) }
                for change in held {
                    heads[owner, default: 0] += 1
                    try store.insertHeld(change, of: stored, field: field, kind: kind, sequence: heads[owner, default: 0])
                }
            }
            if let create = new.create, create != old?.create {
                try replace(field: .record, kind: .create, with: [create], replacing: old?.create.map { [$0] } ?? [])
            }
            if let tombstone = new.tombstone, tombstone != old?.tombstone {
                if old?.tombstone == nil {
                    try store.deleteValues(of: stored)
                    try store.deleteCovered(of: id)
                    grown -= old.map { record in record.fields.values.reduce(0) { $0 + size($1.changes) } } ?? 0
                    for state in old?.fields.values.map({ $0 }) ?? [] { noteRemoved(state.changes) }
                }
                try replace(field: .record, kind: .tombstone, with: [tombstone], replacing: old?.tombstone.map { [$0] } ?? [])
            }
            for (fieldKey, state) in new.fields where old?.fields[fieldKey] != state {
                try replace(field: fieldKey.field, kind: fieldKey.kind, with: state.changes, replacing: old?.fields[fieldKey]?.changes ?? [])
                if case .multiValue(let register) = state {
                    try store.setCovered(register.covered, of: id, field: fieldKey.field)
                }
            }
        }
        // The consent index follows each consent's merged state, in this same transaction:
        // a revoke is in force for every pull that reads after this commit. Only a consent
        // its own patient wrote counts (one created before the role rules, in another
        // patient's name, never does).
        for id in ids where touched.contains(id) && known[id]?.collection == .consent {
            if let state = after[id], let consent = Consent(state), consent.patient == known[id]?.owner {
                var terms = ConsentTerms(consent)
                // A revoke is in force from the moment it reaches the server, whatever time a
                // device whose clock runs ahead wrote into it.
                if let revoked = terms.revokedMillis, let nowMillis { terms.revokedMillis = min(revoked, Int64(clamping: nowMillis)) }
                if let previous = try store.consentRevoked(id), let revoked = terms.revokedMillis { terms.revokedMillis = min(previous, revoked) }
                try store.setConsent(terms)
            } else {
                try store.deleteConsent(id)
            }
        }
        // So does the note index: which notes are shared with which patient.
        for id in ids where touched.contains(id) && known[id]?.collection == .note {
            if let state = after[id], let note = MentorNote(state), let author = known[id]?.owner {
                // When it was written: its create's time (what the center's statistics count by week).
                let written = Int64(clamping: state.create?.timestamp.wallMillis ?? 0)
                try store.setNote(id, author: author, patient: note.patient, shared: note.isShared, writtenMillis: written)
            } else {
                try store.deleteNote(id)
            }
        }
        // And the journal's numbers, which the center's statistics count (only for patients
        // who consent, chosen when counting).
        for id in ids where touched.contains(id) && known[id]?.collection == .journal {
            guard let stored = known[id] else { continue }
            if let state = after[id], let metrics = JournalMetrics(state, patient: stored.owner) {
                try store.setJournalMetrics(metrics, of: stored)
            } else {
                try store.deleteJournalMetrics(of: stored)
            }
        }
        // The commit feed's position moves once per merge that advanced a channel.
        if !heads.isEmpty { try store.advance(heads) }
        return (grown, removedText)
    }
}
