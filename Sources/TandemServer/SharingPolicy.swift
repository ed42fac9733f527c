public import TandemCore
import TandemProtocol

/// Decides what each caller may read: a list of grants, each a member's channel seen
/// through a projection (PROTOCOL.md §7).
///
/// Production uses `ConsentPolicy`; tests inject other policies through this protocol from the test target only. No flag or
/// variable of the shipped binary chooses a policy. A policy that cannot decide throws,
/// and the server answers 5xx: never an empty list.
///
/// A policy is evaluated inside the pull's own snapshot (`store`): what it reads of the
/// store (consents, assignments) is of the same moment as the token check and the pages.
public protocol SharingPolicy: Sendable {
    func grants(for principal: Principal, in store: some PullReads) throws -> [Grant]
    /// The grants, and how long they stand while the store's sharing inputs
    /// (`PullReads.sharingVersion`) stay the same. The default: the grants, not to be used
    /// again.
    func evaluation(for principal: Principal, in store: some PullReads) throws -> SharingEvaluation
}

extension SharingPolicy {
    public func evaluation(for principal: Principal, in store: some PullReads) throws -> SharingEvaluation {
        SharingEvaluation(grants: try grants(for: principal, in: store), reuse: nil)
    }
}

/// A policy's grants for one member in one snapshot, and when they may be used again
/// without evaluating the policy (`SharingMemo`).
public struct SharingEvaluation: Sendable {
    public var grants: [Grant]
    /// nil: evaluate again at every use.
    public var reuse: Reuse?

    public init(grants: [Grant], reuse: Reuse?) {
        self.grants = grants
        self.reuse = reuse
    }

    /// The span of time, at the policy's clock, in which the same inputs give the same grants:
    /// from the evaluation to the first moment a consent behind them changes by itself (it
    /// expires, or a revoke dated ahead comes into force).
    public struct Reuse: Sendable {
        public var clock: any WallClock
        public var fromMillis: Int64
        /// nil: no end.
        public var beforeMillis: Int64?

        public init(clock: any WallClock, fromMillis: Int64, beforeMillis: Int64?) {
            self.clock = clock
            self.fromMillis = fromMillis
            self.beforeMillis = beforeMillis
        }

        /// Whether the grants still stand now (a clock set back before the evaluation: no).
        public func stands() -> Bool {
            let now = Int64(clamping: clock.nowMillis())
            return now >= fromMillis && beforeMillis.map { now < $0 } ?? true
        }
    }
}

/// Read access to one member's channel through one projection.
public struct Grant: Sendable, Equatable, Hashable {
    public var channel: MemberID
    /// nil: the owner's view, every field.
    public var projection: Projection?
    /// When the grant ends by itself (ms since 1970; nil: not by itself): the latest expiry
    /// of the consents behind it. The device holds it and purges at that time, online or
    /// not (PROTOCOL.md §9.4).
    public var untilMillis: Int64?
    /// One record of the channel only (a note shared with its patient); nil: the whole channel.
    public var record: RecordID?
    /// The consent the grant stands on, which the accounting of disclosures names (nil:
    /// none, as for a member's own channel or a note its author shared). Of several
    /// consents behind one grant, the one that lasts longest.
    public var consent: RecordID?

    public init(channel: MemberID, projection: Projection?, untilMillis: Int64? = nil, record: RecordID? = nil, consent: RecordID? = nil) {
        self.channel = channel
        self.projection = projection
        self.untilMillis = untilMillis
        self.record = record
        self.consent = consent
    }

    /// The subscription key: `own`, or `m-<member hex>-<projection>`. A change of
    /// projection is a new key, so widening reads the channel again from zero and
    /// narrowing drops the old subscription (the device purges what nothing carries).
    public func key(for principal: Principal) -> String {
        if channel == principal.member && projection == nil && record == nil { return SubscriptionKey.own }
        if let record { return SubscriptionKey.key(channel: channel, record: record, projection: projection) }
        return SubscriptionKey.key(channel: channel, projection: projection)
    }

    /// Whether this grant carries a field of a record in `collection`.
    public func carries(_ collection: CollectionName?, field: FieldName) -> Bool {
        guard let projection else { return true }
        guard let collection else { return false }
        return Schema.carries(projection, collection, field: field)
    }
}

/// The policy of this release: a member reads their own records, all of them.
public struct OwnRecordsPolicy: SharingPolicy {
    public init() {}
    public func grants(for principal: Principal, in store: some PullReads) throws -> [Grant] {
        [Grant(channel: principal.member, projection: nil)]
    }
}

/// The policy of the shipped server (PROTOCOL.md §7.1): every member reads their own
/// records, all of them; a mentor or supervisor also reads a patient's channel through
/// the scope of each consent that patient granted them, while it is active (neither
/// revoked nor expired at the server's clock) and while they are in that patient's care
/// team; a patient reads each note shared with them, while it is shared; a supervisor
/// reads the notes of the mentors they supervise. Every pull and every live notice decides
/// from the consents and the assignments of its own snapshot (directly, or through a
/// `SharingMemo` that compares the snapshot's sharing version), so a revoke or an
/// unassignment is in force from its commit, on every server of the store.
///
/// Its evaluation may be used again (`SharingEvaluation.Reuse`) because it reads nothing
/// but the principal's member and role, the tables of `SharingMemo.inputTables`, and its
/// clock against the consents' dates.
public struct ConsentPolicy: SharingPolicy {
    let clock: any WallClock

    public init(clock: any WallClock) { self.clock = clock }

    public func grants(for principal: Principal, in store: some PullReads) throws -> [Grant] {
        try evaluation(for: principal, in: store).grants
    }

    public func evaluation(for principal: Principal, in store: some PullReads) throws -> SharingEvaluation {
        let now = Int64(clamping: clock.nowMillis())
        let own = Grant(channel: principal.member, projection: nil)
        // Nothing but the consents' own dates changes these grants while the inputs stay.
        func standing(_ grants: [Grant], before: Int64? = nil) -> SharingEvaluation {
            SharingEvaluation(grants: grants, reuse: .init(clock: clock, fromMillis: now, beforeMillis: before))
        }
        switch principal.role {
        case .patient:
            // Each note shared with the patient, alone, as the patient sees it.
            return standing([own] + (try store.notesShared(with: principal.member)).map { note in
                Grant(channel: note.author, projection: .sharedNote, record: note.note)
            })
        case .staff:
            return standing([own])
        case .mentor, .supervisor:
            break
        }
        // A supervisor reads every note of the mentors they supervise (a mentor's channel
        // holds notes only: the role rules let a mentor create nothing else).
        let supervised = principal.role == .supervisor
            ? try store.assigned(.supervisor, to: principal.member).sorted().map { Grant(channel: $0, projection: .sharedNote) }
            : []
        // Only a care team's mentors and supervisors are ever granted consent (PushRules).
        let consents = try store.consents(to: principal.member)
        // The first moment a consent's own date puts it out of force.
        let changes = consents.flatMap { [$0.expiresMillis, $0.revokedMillis] }.compactMap { $0 }.filter { $0 > now }.min()
        let active = consents.filter { $0.isActive(atMillis: now) }
        guard !active.isEmpty else { return standing([own] + supervised, before: changes) }
        let patients = try store.carePatients(of: principal.member)
        // One grant per patient and scope; it lasts as long as the longest of its consents,
        // which is the one the accounting names.
        var longest: [ConsentScopeKey: (until: Int64?, consent: RecordID)] = [:]
        for consent in active where patients.contains(consent.patient) {
            // An aggregate consent goes to the center, never to a person's devices.
            guard let projection = consent.scope.projection else { continue }
            let scope = ConsentScopeKey(patient: consent.patient, projection: projection)
            guard let held = longest[scope] else {
                longest[scope] = (consent.expiresMillis, consent.id)
                continue
            }
            switch (held.until, consent.expiresMillis) {
            case (.none, _):
                break
            case (.some, .none):
                longest[scope] = (nil, consent.id)
            case (.some(let a), .some(let b)):
                longest[scope] = b > a ? (b, consent.id) : held
            }
        }
        let shared = longest.map { scope, held in
            Grant(channel: scope.patient, projection: scope.projection, untilMillis: held.until, consent: held.consent)
        }
            .sorted { ($0.channel, $0.projection?.rawValue ?? "") < ($1.channel, $1.projection?.rawValue ?? "") }
        return standing([own] + supervised + shared, before: changes)
    }
}

/// One patient's consents of one scope, which make one grant.
private struct ConsentScopeKey: Hashable {
    let patient: MemberID
    let projection: Projection
}

/// The people a member deals with, whose names and roles their devices receive (the
/// `directory`, PROTOCOL.md §7.2): a patient their care team; a mentor their patients and
/// supervisors; a supervisor their mentors; anyone, the patients whose channels they are
/// granted. Nothing about any other member is sent. Staff, who act on the server's host,
/// get none.
public enum Directory {
    public static func members(for principal: Principal, grants: [Grant], in store: some PullReads) throws -> Set<MemberID> {
        var ids = Set(grants.map(\.channel))
        switch principal.role {
        case .patient:
            ids.formUnion(try store.careTeam(of: principal.member))
        case .mentor:
            ids.formUnion(try store.assigned(.mentor, to: principal.member))
            ids.formUnion(try store.carers(.supervisor, of: principal.member))
        case .supervisor:
            ids.formUnion(try store.assigned(.supervisor, to: principal.member))
        case .staff:
            break
        }
        ids.remove(principal.member)
        return ids
    }
}
