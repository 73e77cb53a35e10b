# Runs at install time (install(CODE) in install.cmake), when CMAKE_INSTALL_PREFIX is the prefix
# the install really uses (--prefix, CPack's /usr). Installs the three files whose content or
# place depends on it:
#   SYSCONFDIR/cairn/cairn.conf   conf/cairn.conf with a system service's paths: the store in
#                                 /var/lib/cairn/ and the pid file in /run/cairn/ (the unit's
#                                 StateDirectory and RuntimeDirectory), the log on stderr;
#   SYSCONFDIR/logrotate.d/cairn  conf/cairn.logrotate;
#   UNITDIR/cairn.service         conf/cairn.service with this prefix's binary and config.
# SYSCONFDIR is /etc for the prefixes / and /usr, /etc/opt/NAME for /opt/NAME, else PREFIX/etc,
# as GNUInstallDirs has it.
set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" prefix "${prefix}")

if(IS_ABSOLUTE "${CAIRN_SYSCONFDIR}")
    set(sysconfdir "${CAIRN_SYSCONFDIR}")
elseif(prefix STREQUAL "" OR prefix STREQUAL "/usr")
    set(sysconfdir "/${CAIRN_SYSCONFDIR}")
elseif(prefix MATCHES "^/opt/([^/]+)$")
    set(sysconfdir "/${CAIRN_SYSCONFDIR}/opt/${CMAKE_MATCH_1}")
else()
    set(sysconfdir "${prefix}/${CAIRN_SYSCONFDIR}")
endif()
if(IS_ABSOLUTE "${CAIRN_SBINDIR}")
    set(sbindir "${CAIRN_SBINDIR}")
else()
    set(sbindir "${prefix}/${CAIRN_SBINDIR}")
endif()
if(CAIRN_SYSTEMD_UNITDIR)
    set(unitdir "${CAIRN_SYSTEMD_UNITDIR}")
elseif(prefix STREQUAL "/usr")
    set(unitdir "${CAIRN_SYSTEMD_SYSTEM_UNITDIR}")
else()
    set(unitdir "${prefix}/lib/systemd/system") # systemd reads /usr/local/lib/systemd/system too
endif()

# ---- cairn.conf for a system service --------------------------------------------------------
file(READ "${CAIRN_SOURCE_DIR}/conf/cairn.conf" conf)
# An active line replaced where it stands, or added at the end: a reworded comment in
# conf/cairn.conf can never leave the service without its paths (the install test checks them).
function(cairn_conf_set var option value)
    set(text "${${var}}")
    if(text MATCHES "\n#?${option}( [^\n]*)?\n")
        string(REGEX REPLACE "\n#?${option}( [^\n]*)?\n" "\n${option} ${value}\n" text "${text}")
    else()
        string(APPEND text "\n${option} ${value}\n")
    endif()
    set(${var} "${text}" PARENT_SCOPE)
endfunction()
if(NOT conf MATCHES "\n$")
    string(APPEND conf "\n")
endif()
cairn_conf_set(conf persistence_location "/var/lib/cairn/")
cairn_conf_set(conf pid_file "/run/cairn/cairn.pid")
cairn_conf_set(conf log_dest "stderr")
set(head "# ${sysconfdir}/cairn/cairn.conf — the configuration of the Cairn service (cairn.service).
#
# Installed from Cairn's annotated conf/cairn.conf with the paths of a system service:
#   persistence_location /var/lib/cairn/    the unit's StateDirectory (owned by user cairn)
#   pid_file /run/cairn/cairn.pid           its RuntimeDirectory
#   log_dest stderr                         journald keeps it: journalctl -u cairn
# For a log file instead: log_dest file /var/log/cairn/cairn.log (the unit's LogsDirectory;
# /etc/logrotate.d/cairn rotates it). Check a change with  cairn -t -c ${sysconfdir}/cairn/cairn.conf
# and apply it with  systemctl reload cairn  (listeners: systemctl restart cairn).
# The Debian package keeps your changes to this file across upgrades (a conffile).
#
")
file(WRITE "${CAIRN_WORK_DIR}/etc/cairn.conf" "${head}${conf}")

# ---- the unit and the logrotate snippet ----------------------------------------------------
file(READ "${CAIRN_SOURCE_DIR}/conf/cairn.service" unit)
string(REPLACE "/usr/sbin/cairn" "${sbindir}/cairn" unit "${unit}")
string(REPLACE "/etc/cairn/cairn.conf" "${sysconfdir}/cairn/cairn.conf" unit "${unit}")
file(WRITE "${CAIRN_WORK_DIR}/unit/cairn.service" "${unit}")
configure_file("${CAIRN_SOURCE_DIR}/conf/cairn.logrotate" "${CAIRN_WORK_DIR}/logrotate/cairn"
               COPYONLY)

file(INSTALL DESTINATION "${sysconfdir}/cairn" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${CAIRN_WORK_DIR}/etc/cairn.conf")
file(INSTALL DESTINATION "${sysconfdir}/logrotate.d" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${CAIRN_WORK_DIR}/logrotate/cairn")
file(INSTALL DESTINATION "${unitdir}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${CAIRN_WORK_DIR}/unit/cairn.service")
