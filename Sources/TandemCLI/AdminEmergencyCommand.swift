import ArgumentParser
import Foundation
import TandemCore
import TandemServer
import TandemStore

extension AdminCommand {
    /// Emergency access (42 CFR §2.51): one named staff member reads one patient's journal
    /// for a few hours, through the server (`tandem emergency read`), each read recorded in
    /// the patient's accounting. Granting records what §2.51 asks; every field is required.
    struct GrantEmergencyAccess: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "emergency-access",
            abstract: "Give one staff member time-limited read access to a patient's journal in a medical emergency (42 CFR 2.51); --revoke ends one, --list shows them.",
            discussion: """
                Every read under the access is recorded in the patient's accounting of disclosures, and the patient is \
                told of it at their next sync. The staff member reads with `tandem emergency read --patient MEMBER`.
                """)

        @Option(help: ArgumentHelp("The patient (id or unique name).", valueName: "member"))
        var patient: String?

        @Option(help: ArgumentHelp("The staff member who may read (id or unique name).", valueName: "member"))
        var staff: String?

        @Option(help: ArgumentHelp("The medical personnel the information goes to.", valueName: "name"))
        var recipient: String?

        @Option(help: ArgumentHelp("Their facility.", valueName: "name"))
        var facility: String?

        @Option(help: ArgumentHelp(
            "The nature of the emergency; - reads it from standard input, which keeps it out of the process list, shell history and sudo's log.",
            valueName: "text"))
        var reason: String?

        @Option(help: ArgumentHelp("How long the access lasts (1 to 72 hours).", valueName: "hours"))
        var hours = 24

        @Option(help: ArgumentHelp("End an access now.", valueName: "id"))
        var revoke: String?

        @Flag(help: "List every access granted, active or not.")
        var list = false

        @Flag(help: "With --list: print a JSON array.")
        var json = false

        @OptionGroup var store: StoreOption

        func validate() throws {
            let grant = [patient, staff, recipient, facility, reason]
            if list || revoke != nil {
                guard grant.allSatisfy({ $0 == nil }), !(list && revoke != nil) else {
                    throw ValidationError("Use --list or --revoke ID alone, or grant with --patient, --staff, --recipient, --facility and --reason.")
                }
            } else if grant.contains(where: { $0 == nil }) {
                throw ValidationError("Granting emergency access needs all of --patient, --staff, --recipient, --facility and --reason (42 CFR 2.51).")
            }
        }

        func run() async throws {
            let storage = try store.open()
            let now = Int64(SystemWallClock().nowMillis())
            if list { return try await printList(storage, now: now) }
            if let revoke {
                guard let id = try? RecordID(hex: revoke) else { throw CLIError.invalidChoice("An access id is 32 hexadecimal digits (--list shows them).") }
                guard try await storage.endEmergencyAccess(id, nowMillis: now) else {
                    throw CLIError.invalidChoice("No emergency access \(id.hex) is in force (--list shows them).")
                }
                try await logAction(storage, "emergency-access-revoke", "access \(id.hex)")
                return print("Ended emergency access \(id.hex); reads under it are refused from now on.")
            }
            guard let patient, let staff, let recipient, let facility, var reason else { return }
            if reason == "-" {
                // The rule above the store says how long it may be.
                reason = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            }
            let patientMember = try await storage.member(named: patient)
            let staffMember = try await storage.member(named: staff)
            let grantedBy = "\(AdminActor.current) on \(ProcessInfo.processInfo.hostName)"
            let access = try await storage.grantEmergencyAccess(
                patient: patientMember, staff: staffMember, recipient: recipient, facility: facility, reason: reason, hours: hours,
                grantedBy: grantedBy, nowMillis: now)
            try await logAction(
                storage, "emergency-access",
                "access \(access.id.hex): staff \(staffMember.id.hex) may read patient \(patientMember.id.hex) for \(hours) h")
            print("Emergency access \(access.id.hex): \(terminalSafe(staffMember.name)) may read \(terminalSafe(patientMember.name))'s journal until \(isoMillis(UInt64(access.expiresMillis))).")
            print("Each read is recorded in \(terminalSafe(patientMember.name))'s accounting, and they are told at their next sync.")
            print("End it early: tandem admin emergency-access --revoke \(access.id.hex)")
        }

        struct AccessJSON: Encodable {
            var id, patient, staff, recipient, facility, reason, grantedBy, grantedAt, expiresAt: String
            var revokedAt: String?
            var active: Bool
        }

        func printList(_ storage: any ServerAdministration, now: Int64) async throws {
            let accesses = try await storage.emergencyAccesses()
            func time(_ millis: Int64) -> String { isoMillis(UInt64(max(0, millis))) }
            if json {
                return try printJSON(accesses.map {
                    AccessJSON(
                        id: $0.id.hex, patient: $0.patient.hex, staff: $0.staff.hex, recipient: $0.recipient, facility: $0.facility,
                        reason: $0.reason, grantedBy: $0.grantedBy, grantedAt: time($0.grantedMillis), expiresAt: time($0.expiresMillis),
                        revokedAt: $0.revokedMillis.map(time), active: $0.isActive(atMillis: now))
                })
            }
            guard !accesses.isEmpty else { return print("No emergency access was ever granted.") }
            let names = Dictionary(try await storage.members().map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
            print(table(["ACCESS", "PATIENT", "STAFF", "FOR", "GRANTED", "UNTIL", "STATE"], accesses.map { access in
                [
                    access.id.hex, terminalSafe(names[access.patient] ?? access.patient.hex), terminalSafe(names[access.staff] ?? access.staff.hex),
                    terminalSafe("\(access.recipient), \(access.facility)"), time(access.grantedMillis), time(access.expiresMillis),
                    access.revokedMillis != nil ? "revoked" : (access.isActive(atMillis: now) ? "active" : "expired"),
                ]
            }))
        }
    }
}
