import ArgumentParser
import Foundation
import TandemCore
import TandemServer
import TandemStore

/// The staff member `text` names (an id or a unique name); anyone else is refused.
func staffMember(_ text: String, _ storage: any ServerAdministration) async throws -> Member {
    let member = try await storage.member(named: text)
    guard member.role == .staff else {
        throw CLIError.invalidChoice("\(terminalSafe(member.name)) is a \(member.role.rawValue); only staff sign in to the dashboard.")
    }
    return member
}

extension AdminCommand {
    /// Sets a staff member's dashboard password, read from the terminal (twice, not shown)
    /// or from standard input's first line; never from an argument, which `ps` would show.
    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Set a staff member's password for the dashboard (/dashboard), read from the terminal or standard input.")

        @Argument(help: ArgumentHelp("The staff member (id or unique name).", valueName: "member"))
        var member: String

        @OptionGroup var store: StoreOption

        func run() async throws {
            let storage = try store.open()
            let staff = try await staffMember(member, storage)
            let password: String
            if isatty(STDIN_FILENO) == 1 {
                let first = String(cString: getpass("New dashboard password for \(terminalSafe(staff.name)): "))
                let second = String(cString: getpass("Again: "))
                guard first == second else { throw CLIError.invalidChoice("The two passwords differ; nothing was changed.") }
                password = first
            } else {
                password = readLine(strippingNewline: true) ?? ""
            }
            if let problem = StaffPassword.problem(password) { throw CLIError.invalidChoice(problem + " Nothing was changed.") }
            try await storage.setDashboardPassword(try await StaffPassword.hash(password), of: staff.id, nowMillis: SystemWallClock().nowMillis())
            try await logAction(storage, "set-password", "dashboard password of \(staff.id.hex)")
            print("\(terminalSafe(staff.name))'s dashboard password is set; their open dashboard sessions were ended.")
        }
    }

    /// Prints a one-time code with which a staff member signs in to the dashboard once.
    struct SignInCode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign-in-code",
            abstract: "Print a one-time code with which a staff member signs in to the dashboard (15 minutes by default).")

        @Option(help: ArgumentHelp("The staff member (id or unique name).", valueName: "member"))
        var staff: String

        @Option(help: ArgumentHelp("Minutes until the code expires (1 to 60).", valueName: "minutes"))
        var minutes = 15

        @OptionGroup var store: StoreOption

        func run() async throws {
            guard (1...60).contains(minutes) else { throw CLIError.invalidChoice("--minutes must be from 1 to 60.") }
            let storage = try store.open()
            let member = try await staffMember(staff, storage)
            let code = Secrets.newCode()
            let now = SystemWallClock().nowMillis()
            try await storage.addSignInCode(Secrets.hashCode(code), for: member.id, nowMillis: now, expiresMillis: now + UInt64(minutes) * 60_000)
            try await logAction(storage, "sign-in-code", "dashboard code for \(member.id.hex), valid \(minutes) min")
            print(code)
        }
    }
}
