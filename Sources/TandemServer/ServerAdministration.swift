public import TandemCore
public import TandemProtocol

/// What `tandem admin` does to a center's store, on the server's host: every store
/// implements it (the embedded SQLite one; PostgreSQL next), and the CLI reaches the store
/// only through it. Restoring a backup is not here: it replaces a store rather than
/// changing one, and each store does it its own way (`SQLiteServerStorage.restore`).
public protocol ServerAdministration: Sendable {
    /// Creates the center: its epoch and its first staff member. Returns that member's token.
    /// - Throws: `ServerError.conflict` if the center exists already.
    func initialize(staffName: String, nowMillis: UInt64) async throws -> (member: MemberID, token: String)
    /// A one-time enrollment code for a new member (or, with `member`, another device of
    /// an existing one).
    func invite(role: Role, name: String, member: MemberID?, nowMillis: UInt64, validForMillis: UInt64) async throws -> String
    /// Every member, oldest first.
    func members() async throws -> [Member]
    /// A member's devices (or everyone's, with nil).
    func devices(of member: MemberID?) async throws -> [DeviceInfo]
    /// Revokes a device and voids the unused codes it issued, in one transaction.
    func revokeDevice(_ id: RecordID) async throws
    /// Revokes every device, token and unused code of a member at once.
    func revokeMember(_ member: MemberID) async throws -> MemberRevocation
    /// Replaces a staff member's device-less token; returns the new one (shown once).
    func rotateStaffToken(member: MemberID?, nowMillis: UInt64) async throws -> (member: MemberID, token: String)
    /// The codes still usable at `nowMillis`, oldest first.
    func pendingCodes(nowMillis: UInt64) async throws -> [PendingCode]
    /// Voids one unused code.
    func revokeCode(_ id: RecordID) async throws
    /// Writes a consistent copy of the store to a new file at `path`, while the server runs.
    func backup(to path: String) async throws
    /// Every assignment of the center's care teams.
    func assignments() async throws -> [Assignment]
    /// Sets (or replaces) a staff member's dashboard password, as a bcrypt hash, and closes
    /// their open dashboard sessions.
    /// - Throws: `ServerError.badRequest` when the member is not staff.
    func setDashboardPassword(_ hash: String, of member: MemberID, nowMillis: UInt64) async throws
    /// Stores a one-time dashboard sign-in code (its hash) for a staff member.
    /// - Throws: `ServerError.badRequest` when the member is not staff.
    func addSignInCode(_ codeHash: [UInt8], for member: MemberID, nowMillis: UInt64, expiresMillis: UInt64) async throws
    /// Adds an assignment (`present`) or removes it; false when there was nothing to do.
    /// Checks nothing: `assign` and `unassign` do.
    func setAssignment(_ assignment: Assignment, present: Bool, nowMillis: UInt64) async throws -> Bool
    /// The merged state of one member's channel, as the store holds it: what a device of
    /// that member holds once caught up. For inspection and tests; no device is served it.
    func state(of channel: MemberID) async throws -> ReplicaState
    /// The accounting of disclosures: every entry of one subject's chain (or of every
    /// chain, with nil), each chain in sequence order.
    func disclosures(of subject: MemberID?) async throws -> [Disclosure]
    /// Where each pruned chain of disclosures starts now (chains never pruned are absent).
    func chainStarts() async throws -> [MemberID: ChainStart]
    /// Prunes each chain's oldest entries recorded before `cutoff` (up to its first entry
    /// recorded at or after it), keeping the last pruned entry as the chain's start; returns
    /// how many entries went. `pruneAccounting` decides the cutoff.
    func pruneDisclosures(recordedBefore cutoff: Int64) async throws -> Int
    /// Keeps a new emergency access (`grantEmergencyAccess` checks it first).
    func addEmergencyAccess(_ access: EmergencyAccess) async throws
    /// Marks an emergency access revoked at `atMillis`; false when there is no such access
    /// or it was revoked already. `endEmergencyAccess` checks it is in force first.
    func revokeEmergencyAccess(_ id: RecordID, atMillis: Int64) async throws -> Bool
    /// Every emergency access ever granted, oldest first.
    func emergencyAccesses() async throws -> [EmergencyAccess]
    /// Appends one action to the center's trail of administration (`tandem admin log`).
    func appendAdminLog(_ entry: AdminLogEntry) async throws
    /// The trail of administration actions, oldest first.
    func adminLog() async throws -> [AdminLogEntry]
}

/// One administration action on the center's store, as `tandem admin log` shows it: who
/// (the operating-system user on the server's host), on which host, when, and what, in
/// ids and names only (never health content).
public struct AdminLogEntry: Sendable, Equatable {
    public var atMillis: Int64
    public var actor: String
    public var host: String
    /// The command: `invite`, `revoke-device`, `assign`, `emergency-access`, …
    public var action: String
    /// What it did, in ids and names.
    public var detail: String

    public init(atMillis: Int64, actor: String, host: String, action: String, detail: String) {
        self.atMillis = atMillis
        self.actor = actor
        self.host = host
        self.action = action
        self.detail = detail
    }
}

/// A whole store of a center: what the sync server serves from (`ServerStorage`) and what
/// the host's administrator changes (`ServerAdministration`). Every store implements both
/// (SQLite embedded; PostgreSQL next), and every store-independent server test runs its
/// body against each.
public typealias CenterStore = ServerStorage & ServerAdministration

/// One assignment of a care team: a mentor to a patient, or a supervisor to a mentor.
/// A patient's care team is their mentors and those mentors' supervisors. An assignment
/// alone grants no access to a patient's journal.
public struct Assignment: Sendable, Hashable {
    public enum Kind: String, Sendable {
        /// `carer` is a mentor of `member`, a patient.
        case mentor
        /// `carer` supervises `member`, a mentor.
        case supervisor

        /// The roles of the carer and of the member this kind of assignment joins.
        public var roles: (carer: Role, member: Role) { self == .mentor ? (.mentor, .patient) : (.supervisor, .mentor) }
    }

    public var kind: Kind
    public var carer: MemberID
    public var member: MemberID

    public init(_ kind: Kind, carer: MemberID, member: MemberID) {
        self.kind = kind
        self.carer = carer
        self.member = member
    }
}

extension ServerAdministration {
    /// A one-time enrollment code for a new member (or, with `member`, another device of an
    /// existing one), valid for 72 hours.
    public func invite(role: Role, name: String, member: MemberID? = nil, nowMillis: UInt64) async throws -> String {
        try await invite(role: role, name: name, member: member, nowMillis: nowMillis, validForMillis: 72 * 3_600_000)
    }

    /// Assigns a mentor to a patient, or a supervisor to a mentor, after checking each
    /// member's role. Assigning twice changes nothing.
    /// - Returns: false when the assignment existed already.
    /// - Throws: `ServerError.badRequest` when a role does not fit.
    @discardableResult
    public func assign(_ kind: Assignment.Kind, carer: Member, member: Member, nowMillis: UInt64) async throws -> Bool {
        try Self.check(kind, carer: carer, member: member)
        return try await setAssignment(Assignment(kind, carer: carer.id, member: member.id), present: true, nowMillis: nowMillis)
    }

    /// Ends an assignment.
    /// - Throws: `ServerError.badRequest` when there is no such assignment.
    public func unassign(_ kind: Assignment.Kind, carer: Member, member: Member, nowMillis: UInt64) async throws {
        guard try await setAssignment(Assignment(kind, carer: carer.id, member: member.id), present: false, nowMillis: nowMillis) else {
            throw ServerError.badRequest("\(carer.name) is not assigned to \(member.name).")
        }
    }

    /// Whose device-less staff token `rotateStaffToken` replaces: the member named, who must
    /// be staff (`roleOfNamed` is their role), or else the one staff member who holds such a
    /// token (`holders`).
    /// - Throws: `ServerError.badRequest` when no, or more than one, staff member fits.
    package static func staffTokenHolder(named member: MemberID?, roleOfNamed: Role?, holders: [MemberID]) throws -> MemberID {
        if let member {
            guard roleOfNamed == .staff else { throw ServerError.badRequest("No staff member with id \(member.hex).") }
            return member
        }
        guard holders.count == 1, let only = holders.first else {
            throw ServerError.badRequest(holders.isEmpty
                ? "No staff member holds a staff token; name one with --member."
                : "\(holders.count) staff members hold staff tokens; name one with --member.")
        }
        return only
    }

    static func check(_ kind: Assignment.Kind, carer: Member, member: Member) throws {
        let (carerRole, memberRole) = kind.roles
        guard carer.role == carerRole else { throw ServerError.badRequest("\(carer.name) is a \(carer.role.rawValue), not a \(carerRole.rawValue).") }
        guard member.role == memberRole else { throw ServerError.badRequest("\(member.name) is a \(member.role.rawValue), not a \(memberRole.rawValue).") }
    }

    /// The member `text` names: a member id (32 hexadecimal digits), or a name that exactly
    /// one member has (letter case aside).
    /// - Throws: `ServerError.badRequest` naming what matched, when none or several do.
    public func member(named text: String) async throws -> Member {
        let members = try await members()
        if let id = try? MemberID(hex: text), let member = members.first(where: { $0.id == id }) { return member }
        let named = members.filter { Member.name($0.name, matches: text) }
        guard named.count == 1, let member = named.first else {
            throw ServerError.badRequest(named.isEmpty
                ? "No member has the id or name \(text) (tandem admin members lists them)."
                : "\(named.count) members are named \(text); name one by its id: \(named.map(\.id.hex).joined(separator: ", ")).")
        }
        return member
    }
}

/// An enrollment or link code not yet used, voided or expired, as `tandem admin invites`
/// lists it: who issued it and what it enrolls, never the code itself (only its hash is
/// stored, so the server cannot show it).
public struct PendingCode: Sendable, Equatable {
    /// Who made the code.
    public enum Issuer: Sendable, Equatable {
        /// `tandem admin invite` on the server's host.
        case administrator
        /// A member's device, through `POST /v1/link`.
        case device(id: RecordID, name: String)
        /// A token that belongs to no device (the staff token from `tandem admin init`).
        case staffToken(member: MemberID)
    }

    public var id: RecordID
    public var issuer: Issuer
    public var role: Role
    /// The member's name (for a link code, the existing member's).
    public var name: String
    /// The existing member a link code adds a device to; nil for a new member's invite.
    public var member: MemberID?
    public var expiresMillis: UInt64

    public init(id: RecordID, issuer: Issuer, role: Role, name: String, member: MemberID?, expiresMillis: UInt64) {
        self.id = id
        self.issuer = issuer
        self.role = role
        self.name = name
        self.member = member
        self.expiresMillis = expiresMillis
    }
}

/// What revoking a member took away.
public struct MemberRevocation: Sendable, Equatable {
    public var devices: Int
    public var tokens: Int
    public var codes: Int

    public init(devices: Int, tokens: Int, codes: Int) {
        self.devices = devices
        self.tokens = tokens
        self.codes = codes
    }
}

