import ArgumentParser
import Foundation
import TandemServer
import TandemServerPostgres

/// Which center store a server-side command (`tandem serve`, `tandem admin …`) opens: the
/// embedded SQLite file (`--db PATH`, the default), or a PostgreSQL database that several
/// instances share (`--postgres URL`, or the `TANDEM_DATABASE_URL` environment variable).
enum StoreLocation: CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    static let defaultPath = "tandem-server.sqlite"

    /// `--postgres` and `--db` name one store each: both together are refused. With
    /// neither, `TANDEM_DATABASE_URL` names PostgreSQL, else the default file. A URL without
    /// a password takes `PGPASSWORD`'s, as PostgreSQL's own tools do (a password in a
    /// command line is visible to every user of the host).
    static func resolve(db: String?, postgres: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StoreLocation {
        if db != nil, postgres != nil { throw ValidationError("Give --db (SQLite) or --postgres (PostgreSQL), not both.") }
        if let db { return .sqlite(path: db) }
        guard let url = postgres ?? environment["TANDEM_DATABASE_URL"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            return .sqlite(path: defaultPath)
        }
        var location: PostgresLocation
        do { location = try PostgresLocation(url: url) } catch {
            throw ValidationError("\(postgres != nil ? "--postgres" : "TANDEM_DATABASE_URL"): \(error)")
        }
        if location.password == nil, let password = environment["PGPASSWORD"], !password.isEmpty { location.password = password }
        return .postgres(location)
    }

    /// The store, for saying where something happened (a PostgreSQL URL without its password).
    var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let location): location.description
        }
    }

    /// Opens the store, creating (SQLite) or migrating it if needed.
    func open() throws -> any CenterStore {
        switch self {
        case .sqlite(let path): try SQLiteServerStorage(path: path)
        case .postgres(let location): try PostgresServerStorage(location: location)
        }
    }
}
