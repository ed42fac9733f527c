import Foundation
import Hummingbird
import Logging
import TandemCore
import TandemProtocol

// The routes of the accounting of disclosures: a member's own chain (§9.16) and reads
// under emergency access (§9.17).
extension SyncServer {
    /// The caller's own chain of disclosures after entry `after` (§9.16): who received
    /// their records, with names for display; nobody reads another member's chain here.
    func audit(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        let principal = try await authenticate(request, &log)
        let text = request.uri.queryParameters["after"].map(String.init) ?? "0"
        guard let after = Int64(text), after >= 0 else { throw ServerError.badRequest("after must be a non-negative entry number.") }
        let limit = 1_000
        let member = principal.member
        let (start, entries, names, devices, emergencies) = try await storage.read { store in
            // A pruned chain goes on from its start: entries up to it are gone.
            let start = try store.chainStart(of: member).flatMap { $0.sequence > after ? $0 : nil }
            let entries = try store.disclosures(of: member, after: max(after, start?.sequence ?? 0), limit: limit + 1)
            let emergencies = try store.emergencyAccesses(ids: Set(entries.filter { $0.scope == DisclosureScope.emergency }.compactMap(\.consent)))
            let people = Set(entries.map(\.recipient)).union(emergencies.values.map(\.staff))
            return (start, entries, try store.names(of: people), try store.deviceNames(of: Set(entries.compactMap(\.device))), emergencies)
        }
        return try json(AuditResponse(
            entries: entries.prefix(limit).map { entry in
                // An emergency read names its access in the consent's place (§9.17).
                let emergency = entry.scope == DisclosureScope.emergency ? entry.consent.flatMap { emergencies[$0] } : nil
                return DisclosureEntry(
                    entry, recipientName: names[entry.recipient]?.name, recipientRole: names[entry.recipient]?.role.rawValue,
                    deviceName: entry.device.flatMap { devices[$0] },
                    emergency: emergency.map { $0.detail(staffName: names[$0.staff]?.name ?? "") })
            },
            more: entries.count > limit, serverTime: wallClock.nowMillis(), start: start))
    }

    /// `POST /v1/emergency/journal`: a patient's journal for the staff member who holds an
    /// emergency access to it now (§9.17), recorded before it is sent.
    func emergencyRead(_ request: Request, _ log: inout Logger.Metadata) async throws -> Response {
        let principal = try await authenticate(request, &log)
        let body: EmergencyReadRequest = try await decodeJSON(request, upTo: limits.maxEnrollBytes)
        let patient = body.patient
        guard !patient.isEmpty, patient.utf8.count <= 200 else {
            throw ServerError.badRequest("patient must name a patient: a member id or a name, at most 200 bytes.")
        }
        let answer = try await EmergencyRules.read(patient: patient, by: principal, nowMillis: Int64(wallClock.nowMillis()), storage: storage)
        log["emergency_access"] = "\(answer.access)"
        return try json(answer)
    }
}
