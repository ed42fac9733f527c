import ArgumentParser
import Foundation
import Hummingbird
import TandemServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the center's sync server on its embedded SQLite store. SIGINT or SIGTERM stops it cleanly."
    )

    @Option(help: ArgumentHelp("The server's store (created if missing).", valueName: "path"))
    var db = "tandem-server.sqlite"

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0: any free port, printed at start).")
    var port = 8080

    func run() async throws {
        let storage = try SQLiteServerStorage(path: db)
        let host = host
        let server = SyncServer(storage: storage)
        let app = server.application(host: host, port: port) { port in
            // Written straight to the file descriptor, so a parent reading a pipe sees it now.
            let line = "Tandem server listening on http://\(host):\(port) (store: \(storage.path))\n"
            _ = line.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
        }
        try await app.runService()
    }
}
