import ArgumentParser
import Foundation
import TandemCore
import TandemProtocol
import TandemServer
import TandemServerPostgres
import TandemStore

/// Administration on the server's host: these commands open the server's store directly
/// (SQLite lets them run while the server runs). They need no token: whoever can read the
/// store file is the administrator.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Administer the center's server: run on the server's host, against its store.",
        subcommands: [
            Init.self, Invite.self, Invites.self, RevokeInvite.self, Members.self, Assign.self, Unassign.self, Devices.self,
            RevokeDevice.self, RevokeMember.self, RotateStaffToken.self, Backup.self, Restore.self, Audit.self, GrantEmergencyAccess.self, SeedDemo.self, SetPassword.self, SignInCode.self,
            Log.self,
        ]
    )

    struct StoreOption: ParsableArguments {
        @Option(help: ArgumentHelp("The server's SQLite store (default: tandem-server.sqlite).", valueName: "path"))
        var db: String?

        @Option(help: ArgumentHelp(
            "The server's PostgreSQL database instead of --db (also read from TANDEM_DATABASE_URL; its password from PGPASSWORD).",
            valueName: "postgres://user@host:port/database"))
        var postgres: String?

        var location: StoreLocation { get throws { try StoreLocation.resolve(db: db, postgres: postgres) } }

        /// The existing store: every command but `init` refuses a path with no store at it,
        /// instead of creating an empty one there.
        func open() throws -> any ServerAdministration {
            let location = try location
            if case .sqlite(let path) = location, !FileManager.default.fileExists(atPath: path) { throw CLIError.noServerStore(path) }
            return try location.open()
        }
    }

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the center and its first staff member; print that member's token once.")

        @Option(help: "The first staff member's name.")
        var name = "Administrator"

        @OptionGroup var store: StoreOption

        func run() async throws {
            let location = try store.location
            let storage: any ServerAdministration = try location.open()
            let (member, token) = try await storage.initialize(staffName: name, nowMillis: SystemWallClock().nowMillis())
            try await logAction(storage, "init", "created the center; first staff member \(member.hex)")
            print("Created the center in \(location). Staff member \(member.hex).")
            print("Token (shown once, keep it secret): \(token)")
        }
    }

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a one-time enrollment code for a new member (72 hours by default).")

        @Option(help: ArgumentHelp("The new member's role.", valueName: "patient|mentor|supervisor|staff"))
        var role: String

        @Option(help: "The new member's name.")
        var name: String

        @Option(help: ArgumentHelp("Hours until the code expires.", valueName: "hours"))
        var expires = 72

        @OptionGroup var store: StoreOption

        func run() async throws {
            guard let role = Role(rawValue: role) else { throw CLIError.invalidChoice("--role must be patient, mentor, supervisor or staff.") }
            guard (1...24 * 30).contains(expires) else { throw CLIError.invalidChoice("--expires must be from 1 to 720 hours.") }
            let storage = try store.open()
            let code = try await storage.invite(role: role, name: name, member: nil, nowMillis: SystemWallClock().nowMillis(), validForMillis: UInt64(expires) * 3_600_000)
            try await logAction(storage, "invite", "a \(role.rawValue) named \(name), valid \(expires) h")
            print(code)
        }
    }

    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the center's members, with their roles and care-team assignments.")

        @Flag(help: "One JSON array: each member's id, name, role, and the ids of the mentors, patients and supervisors they are assigned with.")
        var json = false

        @OptionGroup var store: StoreOption

        func run() async throws {
            let storage = try store.open()
            let members = try await storage.members()
            let assignments = try await storage.assignments()
            let names = Dictionary(members.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
            // With whom each member is assigned, by the other's role.
            var with: [MemberID: [Role: [MemberID]]] = [:]
            for assignment in assignments {
                let (carerRole, memberRole) = assignment.kind.roles
                with[assignment.member, default: [:]][carerRole, default: []].append(assignment.carer)
                with[assignment.carer, default: [:]][memberRole, default: []].append(assignment.member)
            }
            if json {
                return try printJSON(members.map { member in
                    let mine = with[member.id] ?? [:]
                    return MemberJSON(
                        id: member.id.hex, name: member.name, role: member.role.rawValue, mentors: (mine[.mentor] ?? []).map(\.hex),
                        patients: (mine[.patient] ?? []).map(\.hex), supervisors: (mine[.supervisor] ?? []).map(\.hex))
                })
            }
            print(table(["MEMBER", "ROLE", "NAME", "ASSIGNED WITH"], members.map { member in
                let mine = with[member.id] ?? [:]
                let team = [Role.mentor, .patient, .supervisor].compactMap { role -> String? in
                    guard let ids = mine[role], !ids.isEmpty else { return nil }
                    return "\(role.rawValue)s: " + ids.map { terminalSafe(names[$0] ?? $0.hex) }.joined(separator: ", ")
                }.joined(separator: "; ")
                return [member.id.hex, member.role.rawValue, terminalSafe(member.name), team]
            }))
        }
    }

    /// `assign` and `unassign`: a mentor with a patient, or a supervisor with a mentor.
    struct AssignmentOptions: ParsableArguments {
        @Option(help: ArgumentHelp("The mentor (id or unique name).", valueName: "member"))
        var mentor: String?

        @Option(help: ArgumentHelp("The patient (id or unique name), with --mentor.", valueName: "member"))
        var patient: String?

        @Option(help: ArgumentHelp("The supervisor (id or unique name), with --mentor.", valueName: "member"))
        var supervisor: String?

        /// The assignment named, its members looked up by id or name.
        func resolve(_ storage: any ServerAdministration) async throws -> (Assignment.Kind, carer: Member, member: Member) {
            switch (mentor, patient, supervisor) {
            case (let mentor?, let patient?, nil):
                return (.mentor, try await storage.member(named: mentor), try await storage.member(named: patient))
            case (let mentor?, nil, let supervisor?):
                return (.supervisor, try await storage.member(named: supervisor), try await storage.member(named: mentor))
            default:
                throw CLIError.invalidChoice("Name a mentor and a patient (--mentor M --patient P), or a supervisor and a mentor (--supervisor S --mentor M).")
            }
        }
    }

    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Assign a mentor to a patient, or a supervisor to a mentor. An assignment alone grants no access to a journal.")

        @OptionGroup var assignment: AssignmentOptions
        @OptionGroup var store: StoreOption

        func run() async throws {
            let storage = try store.open()
            let (kind, carer, member) = try await assignment.resolve(storage)
            let added = try await storage.assign(kind, carer: carer, member: member, nowMillis: SystemWallClock().nowMillis())
            if added { try await logAction(storage, "assign", "\(kind.rawValue) \(carer.id.hex) to \(member.id.hex)") }
            let what = kind == .mentor ? "mentor of" : "supervisor of"
            print(added
                ? "\(terminalSafe(carer.name)) is now \(what) \(terminalSafe(member.name))."
                : "\(terminalSafe(carer.name)) was already \(what) \(terminalSafe(member.name)).")
        }
    }

    struct Unassign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End an assignment made with tandem admin assign.")

        @OptionGroup var assignment: AssignmentOptions
        @OptionGroup var store: StoreOption

        func run() async throws {
            let storage = try store.open()
            let (kind, carer, member) = try await assignment.resolve(storage)
            try await storage.unassign(kind, carer: carer, member: member, nowMillis: SystemWallClock().nowMillis())
            try await logAction(storage, "unassign", "\(kind.rawValue) \(carer.id.hex) from \(member.id.hex)")
            print("\(terminalSafe(carer.name)) is no longer \(kind == .mentor ? "mentor" : "supervisor") of \(terminalSafe(member.name)).")
        }
    }

    struct MemberJSON: Encodable {
        var id: String
        var name: String
        var role: String
        var mentors: [String]
        var patients: [String]
        var supervisors: [String]
    }

    struct Devices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every enrolled device.")

        @OptionGroup var store: StoreOption

        func run() async throws {
            let devices = try await store.open().devices(of: nil)
            print(table(["DEVICE", "MEMBER", "NAME", "STATE"], devices.map { [$0.id, $0.member, terminalSafe($0.name), $0.revoked ? "revoked" : "active"] }))
        }
    }

    struct RevokeDevice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-device", abstract: "Revoke a device: its next request is refused with a clear message.")

        @Argument(help: "The device's id (tandem admin devices).")
        var id: String

        @OptionGroup var store: StoreOption

        func run() async throws {
            guard let device = try? RecordID(hex: id) else { throw CLIError.invalidChoice("A device id is 32 hexadecimal digits.") }
            let storage = try store.open()
            try await storage.revokeDevice(device)
            try await logAction(storage, "revoke-device", "device \(device.hex)")
            print("Revoked device \(device.hex) and voided the codes it issued.")
        }
    }

    struct Invites: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the enrollment and link codes nobody has used yet: who issued each, for whom, until when (never the code).")

        @OptionGroup var store: StoreOption

        func run() async throws {
            let codes = try await store.open().pendingCodes(nowMillis: SystemWallClock().nowMillis())
            let rows = codes.map { code -> [String] in
                let issuer = switch code.issuer {
                case .administrator: "admin"
                case .device(let id, let name): "device \(shortID(id)) \(terminalSafe(name))"
                case .staffToken(let member): "staff token \(member.hex.prefix(8))"
                }
                return [code.id.hex, issuer, code.role.rawValue, terminalSafe(code.name), isoTime(HybridTimestamp(wallMillis: code.expiresMillis, counter: 0))]
            }
            print(table(["CODE ID", "ISSUER", "ROLE", "NAME", "EXPIRES"], rows))
        }
    }

    struct RevokeInvite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke-invite", abstract: "Void an unused enrollment or link code.")

        @Argument(help: "The code's id (tandem admin invites), not the code.")
        var id: String

        @OptionGroup var store: StoreOption

        func run() async throws {
            guard let code = try? RecordID(hex: id) else { throw CLIError.invalidChoice("A code id is 32 hexadecimal digits (tandem admin invites).") }
            let storage = try store.open()
            try await storage.revokeCode(code)
            try await logAction(storage, "revoke-invite", "code \(code.hex)")
            print("Voided code \(code.hex).")
        }
    }

    struct RevokeMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-member",
            abstract: "Revoke every device, token and unused code of a member at once; their live connections close within 5 s.")

        @Argument(help: "The member's id or unique name (tandem admin members).")
        var member: String

        @OptionGroup var store: StoreOption

        func run() async throws {
            let storage = try store.open()
            let id = try await storage.member(named: member).id
            let revoked = try await storage.revokeMember(id)
            try await logAction(storage, "revoke-member", "member \(id.hex): \(revoked.devices) device(s), \(revoked.tokens) token(s), \(revoked.codes) code(s)")
            print("Revoked member \(id.hex): \(revoked.devices) device(s), \(revoked.tokens) token(s), \(revoked.codes) unused code(s).")
        }
    }

    struct RotateStaffToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-staff-token",
            abstract: "Revoke the staff token from admin init (and the codes it issued); print a new one once.")

        @Option(help: ArgumentHelp("The staff member (id or unique name) whose token to replace (needed when several hold one).", valueName: "member"))
        var member: String?

        @OptionGroup var store: StoreOption

        func run() async throws {
            let storage = try store.open()
            var id: MemberID? = nil
            if let member { id = try await storage.member(named: member).id }
            let (staff, token) = try await storage.rotateStaffToken(member: id, nowMillis: SystemWallClock().nowMillis())
            try await logAction(storage, "rotate-staff-token", "staff member \(staff.hex)")
            print("Revoked the staff token of \(staff.hex); the old one is refused from now on.")
            print("Token (shown once, keep it secret): \(token)")
        }
    }

    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a consistent copy of the server's store to a new file; safe while the server runs.")

        @Argument(help: "The backup file to create.")
        var file: String

        @OptionGroup var store: StoreOption

        func run() async throws {
            let storage = try store.open()
            try await storage.backup(to: file)
            try await logAction(storage, "backup", "to \(file)")
            print("Backed up \(try store.location) to \(file).")
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the server's store by a backup, with a new epoch. Stop the server first; devices re-push what they hold.")

        @Argument(help: "The backup file.")
        var file: String

        @OptionGroup var store: StoreOption

        func run() async throws {
            let location = try store.location
            switch location {
            case .sqlite(let path): try SQLiteServerStorage.restore(backup: file, to: path)
            case .postgres(let database): try PostgresBackup.restore(backup: file, to: database)
            }
            try await logAction(try store.open(), "restore", "from \(file), with a new epoch")
            print("Restored \(file) into \(location) with a new epoch. Start the server; devices catch up on their next sync.")
        }
    }
}
