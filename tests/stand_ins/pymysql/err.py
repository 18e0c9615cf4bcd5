"""pymysql.err: the errors the stand-in server raises, with MariaDB's codes as ``args``."""


class MySQLError(Exception):
    pass


class OperationalError(MySQLError):
    pass


class ProgrammingError(MySQLError):
    pass
