# `cmake --install` (GNUInstallDirs; CMAKE_INSTALL_PREFIX, --prefix and DESTDIR honoured):
#   sbin/cairn, bin/cairn-passwd, bin/cairn-db, the man pages (man/, gzipped), README.md in
#   share/doc/cairn; and, with paths worked out at install time (install_paths.cmake), so that
#   `cmake --install --prefix` and CPack's /usr get them right: SYSCONFDIR/cairn/cairn.conf (for
#   a system service), SYSCONFDIR/logrotate.d/cairn, and the systemd unit cairn.service.
include(GNUInstallDirs)

set(CAIRN_SYSTEMD_UNITDIR "" CACHE PATH
    "Where cairn.service goes (default: systemd's own directory for prefix /usr, else PREFIX/lib/systemd/system)")
# systemd's unit directory for packages (/lib/systemd/system on Debian 12)
set(CAIRN_SYSTEMD_SYSTEM_UNITDIR /lib/systemd/system)
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
    pkg_get_variable(_unitdir systemd systemdsystemunitdir)
    if(_unitdir)
        set(CAIRN_SYSTEMD_SYSTEM_UNITDIR ${_unitdir})
    endif()
endif()

install(TARGETS cairn RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS cairn-passwd cairn-db RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Man pages: the version filled in, gzipped as Debian wants them (-n: no name or time stamp).
set(CAIRN_MAN_PAGES cairn.8 cairn.conf.5 cairn-passwd.1 cairn-db.1)
set(_man_gz "")
foreach(page ${CAIRN_MAN_PAGES})
    string(REGEX MATCH "[0-9]$" section ${page})
    set(VERSION ${PROJECT_VERSION})
    configure_file(${CMAKE_SOURCE_DIR}/man/${page} ${CMAKE_BINARY_DIR}/man/${page} @ONLY)
    add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/${page}.gz
                       COMMAND gzip -9nc ${page} > ${page}.gz
                       DEPENDS ${CMAKE_BINARY_DIR}/man/${page}
                       WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/man VERBATIM)
    list(APPEND _man_gz ${CMAKE_BINARY_DIR}/man/${page}.gz)
    install(FILES ${CMAKE_BINARY_DIR}/man/${page}.gz
            DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(cairn_man ALL DEPENDS ${_man_gz})

# What depends on the prefix the install really uses is made at install time.
install(CODE "
set(CAIRN_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
set(CAIRN_WORK_DIR \"${CMAKE_BINARY_DIR}/packaging\")
set(CAIRN_SBINDIR \"${CMAKE_INSTALL_SBINDIR}\")
set(CAIRN_SYSCONFDIR \"${CMAKE_INSTALL_SYSCONFDIR}\")
set(CAIRN_SYSTEMD_UNITDIR \"${CAIRN_SYSTEMD_UNITDIR}\")
set(CAIRN_SYSTEMD_SYSTEM_UNITDIR \"${CAIRN_SYSTEMD_SYSTEM_UNITDIR}\")
include(\"${CMAKE_SOURCE_DIR}/packaging/install_paths.cmake\")
")
