import Foundation
public import TandemCore
public import TandemProtocol

// Emergency access (42 CFR §2.51; issue 14): in a medical emergency, the host's
// administrator lets one named staff member read one patient's journal for a few hours.
// The staff member reads through the server (`GET /v1/emergency/journal`), never into a
// store of theirs, and each read is an entry of scope `emergency` in the patient's
// accounting, committed before the answer is sent. The rules are here, once; stores keep
// the accesses through `ServerAdministration` and read them through `PullReads`.

/// One emergency access, with what §2.51 asks to be recorded: who disclosed (the host's
/// administrator who granted it), to whom (the medical personnel and their facility), when,
/// and the nature of the emergency.
public struct EmergencyAccess: Sendable, Equatable {
    public var id: RecordID
    public var patient: MemberID
    /// The one staff member who may read.
    public var staff: MemberID
    /// The medical personnel the information goes to.
    public var recipient: String
    public var facility: String
    /// The nature of the emergency.
    public var reason: String
    /// Who granted it: the operating-system user on the server's host, and the host.
    public var grantedBy: String
    public var grantedMillis: Int64
    public var expiresMillis: Int64
    public var revokedMillis: Int64?

    public init(
        id: RecordID, patient: MemberID, staff: MemberID, recipient: String, facility: String, reason: String, grantedBy: String,
        grantedMillis: Int64, expiresMillis: Int64, revokedMillis: Int64?
    ) {
        self.id = id
        self.patient = patient
        self.staff = staff
        self.recipient = recipient
        self.facility = facility
        self.reason = reason
        self.grantedBy = grantedBy
        self.grantedMillis = grantedMillis
        self.expiresMillis = expiresMillis
        self.revokedMillis = revokedMillis
    }

    /// Whether the staff member may read at `nowMillis`: neither expired nor revoked then.
    public func isActive(atMillis nowMillis: Int64) -> Bool {
        if let revokedMillis, revokedMillis <= nowMillis { return false }
        return expiresMillis > nowMillis
    }

    /// What the patient's device is shown beside the entry of a read under this access.
    public func detail(staffName: String) -> EmergencyDetail {
        EmergencyDetail(
            staffName: staffName, recipient: recipient, facility: facility, reason: reason, grantedBy: grantedBy, grantedAt: grantedMillis)
    }

    /// The longest an access may last, in hours.
    public static let maxHours = 72
    /// The longest a free-text field of an access may be, in bytes.
    public static let maxTextBytes = 1_000
}

extension ServerAdministration {
    /// Gives `staff` read access to `patient`'s journal for `hours`, after checking both
    /// roles and every field (§2.51 asks for all of them).
    /// - Throws: `ServerError.badRequest` naming the field or role that does not fit.
    public func grantEmergencyAccess(
        patient: Member, staff: Member, recipient: String, facility: String, reason: String, hours: Int, grantedBy: String, nowMillis: Int64
    ) async throws -> EmergencyAccess {
        guard patient.role == .patient else { throw ServerError.badRequest("\(patient.name) is a \(patient.role.rawValue), not a patient.") }
        guard staff.role == .staff else { throw ServerError.badRequest("\(staff.name) is a \(staff.role.rawValue), not a staff member.") }
        guard (1...EmergencyAccess.maxHours).contains(hours) else {
            throw ServerError.badRequest("--hours must be from 1 to \(EmergencyAccess.maxHours).")
        }
        func checked(_ text: String, _ what: String) throws -> String {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw ServerError.badRequest("\(what) is required.") }
            guard trimmed.utf8.count <= EmergencyAccess.maxTextBytes else {
                throw ServerError.badRequest("\(what) may be at most \(EmergencyAccess.maxTextBytes) bytes.")
            }
            guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ServerError.badRequest("\(what) may not hold control characters.")
            }
            return trimmed
        }
        let access = EmergencyAccess(
            id: RecordID.random(), patient: patient.id, staff: staff.id, recipient: try checked(recipient, "The recipient"),
            facility: try checked(facility, "The facility"), reason: try checked(reason, "The reason"), grantedBy: try checked(grantedBy, "The grantor"),
            grantedMillis: nowMillis, expiresMillis: nowMillis + Int64(hours) * 3_600_000, revokedMillis: nil)
        try await addEmergencyAccess(access)
        return access
    }
}

extension ServerAdministration {
    /// Ends an emergency access now; false when there is no such access in force (unknown,
    /// expired, or revoked already).
    public func endEmergencyAccess(_ id: RecordID, nowMillis: Int64) async throws -> Bool {
        guard let access = try await emergencyAccesses().first(where: { $0.id == id }), access.isActive(atMillis: nowMillis) else { return false }
        return try await revokeEmergencyAccess(id, atMillis: nowMillis)
    }
}

enum EmergencyRules {
    /// The most held changes one emergency read returns: a few years of daily entries.
    static let maxChanges = 200_000

    /// The journal of the patient `patientText` names (an id, or the name of a patient the
    /// caller holds an access to), read in one snapshot with the access it stands on, and
    /// recorded in the patient's accounting before it is returned.
    /// - Throws: `ServerError.forbidden` when the caller is not staff or holds no access
    ///   to such a patient now (the same answer whether or not the patient exists).
    static func read(
        patient patientText: String, by principal: Principal, nowMillis: Int64, storage: some ServerStorage
    ) async throws -> EmergencyReadResponse {
        // From the staff member's own enrolled device: not the device-less staff token.
        guard principal.role == .staff, principal.device != nil else {
            throw ServerError.forbidden("Only a staff member's enrolled device reads under emergency access.")
        }
        let staff = principal.member
        let (access, patientName, entries, truncated) = try await storage.read { store -> (EmergencyAccess, String, [JournalEntry], Bool) in
            let accesses = try store.emergencyAccesses(staff: staff).filter { $0.isActive(atMillis: nowMillis) }
            let names = try store.names(of: Set(accesses.map(\.patient)))
            let id = try? MemberID(hex: patientText)
            let matching = accesses.filter { access in
                access.patient == id || names[access.patient].map { Member.name($0.name, matches: patientText) } == true
            }
            guard let access = matching.max(by: { $0.expiresMillis < $1.expiresMillis }) else {
                throw ServerError.forbidden("You hold no emergency access to that patient now (tandem admin emergency-access grants one).")
            }
            guard Set(matching.map(\.patient)).count == 1 else {
                throw ServerError.badRequest("Several patients you may read are named \(patientText); name one by its id.")
            }
            var state = ReplicaState()
            var after: Int64 = 0
            var read = 0
            var truncated = false
            while true {
                let rows = try store.held(in: access.patient, after: after, limit: 10_000)
                for row in rows where row.collection == .journal { state.apply(try Change(canonicalBytes: row.change)) }
                read += rows.count
                guard let last = rows.last else { break }
                guard read < maxChanges else {
                    truncated = true
                    break
                }
                after = last.sequence
            }
            // Oldest first; entries without a time first, each group in id order.
            let entries = state.records.values.compactMap(JournalEntry.init).sorted { left, right in
                if left.at != right.at {
                    guard let leftAt = left.at else { return true }
                    guard let rightAt = right.at else { return false }
                    return leftAt < rightAt
                }
                return left.id < right.id
            }
            return (access, names[access.patient]?.name ?? "", entries, truncated)
        }
        let delivery = Delivery(
            subject: access.patient, recipient: staff, device: principal.device, scope: DisclosureScope.emergency, consent: access.id,
            records: entries.map(\.id).sorted())
        let recorded = try await storage.account { writes in try AccountingRules.record([delivery], atMillis: nowMillis, in: writes) }
        return EmergencyReadResponse(
            access: access.id.hex, patient: access.patient.hex, patientName: patientName, expiresAt: access.expiresMillis,
            entries: entries.map(EmergencyJournalEntry.init), disclosure: recorded.first?.sequence, serverTime: UInt64(nowMillis),
            truncated: truncated ? true : nil)
    }
}
