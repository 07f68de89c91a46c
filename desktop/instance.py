"""One instance per user and data dir, over a local socket: a second launch asks the first to
come forward, then exits."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_MS = 500


class SingleInstance(QObject):
    activated = Signal()  # another launch asked this instance to come forward

    def __init__(self, key: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.server: QLocalServer | None = None
        # asked at least once: a launch while this one still starts (its icon is up before
        # its windows can be) is answered once they can
        self.asked = False

    def claim(self) -> bool:
        """True: this is the first instance (now listening). False: another one runs and was
        told to come forward."""
        socket = QLocalSocket()
        socket.connectToServer(self.key)
        if socket.waitForConnected(CONNECT_MS):
            socket.write(b"show\n")
            socket.waitForBytesWritten(CONNECT_MS)
            socket.disconnectFromServer()
            return False
        QLocalServer.removeServer(self.key)  # a socket file left by a crash
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not self.server.listen(self.key):
            raise RuntimeError(f"cannot listen on {self.key}: {self.server.errorString()}")
        self.server.newConnection.connect(self._connected)
        return True

    def _connected(self) -> None:
        assert self.server is not None
        while self.server.hasPendingConnections():
            connection = self.server.nextPendingConnection()
            connection.readyRead.connect(lambda c=connection: self._read(c))

    def _read(self, connection: QLocalSocket) -> None:
        if bytes(connection.readAll().data()).strip() == b"show":
            self.asked = True
            self.activated.emit()
        connection.disconnectFromServer()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
