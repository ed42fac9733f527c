import ArgumentParser
import Foundation
import TandemCore
import TandemServer
import TandemStore

/// Records an administration action in the center's trail (`tandem admin log`): who on
/// this host did it, when, and what, in ids and names only.
func logAction(_ storage: any ServerAdministration, _ action: String, _ detail: String) async throws {
    try await storage.appendAdminLog(AdminLogEntry(
        atMillis: Int64(SystemWallClock().nowMillis()), actor: AdminActor.current, host: ProcessInfo.processInfo.hostName,
        action: action, detail: detail))
}

/// Who runs an administration command: the operating-system user, and the user who became
/// them through sudo when one did.
enum AdminActor {
    static var current: String {
        let environment = ProcessInfo.processInfo.environment
        var user = environment["USER"] ?? environment["LOGNAME"] ?? ""
        if user.isEmpty, let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { user = String(cString: name) }
        if user.isEmpty { user = "uid \(geteuid())" }
        if let sudo = environment["SUDO_USER"], !sudo.isEmpty, sudo != user { return "\(sudo) (as \(user) through sudo)" }
        return user
    }
}

extension AdminCommand {
    struct Log: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the center's trail of administration actions: who, when, on which host, what.")

        @Flag(help: "Print a JSON array: {at, actor, host, action, detail} per action, oldest first.")
        var json = false

        @OptionGroup var store: StoreOption

        struct EntryJSON: Encodable {
            var at: String
            var actor: String
            var host: String
            var action: String
            var detail: String
        }

        func run() async throws {
            let entries = try await store.open().adminLog()
            if json {
                return try printJSON(entries.map {
                    EntryJSON(at: isoMillis(UInt64(max(0, $0.atMillis))), actor: $0.actor, host: $0.host, action: $0.action, detail: $0.detail)
                })
            }
            guard !entries.isEmpty else { return print("No administration actions recorded yet.") }
            print(table(["AT", "WHO", "HOST", "ACTION", "WHAT"], entries.map {
                [isoMillis(UInt64(max(0, $0.atMillis))), terminalSafe($0.actor), terminalSafe($0.host), $0.action, terminalSafe($0.detail)]
            }))
        }
    }
}
