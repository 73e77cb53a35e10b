# A Debian package of what `cmake --install` installs, with CPack's DEB generator:
#     cmake --build build && (cd build && cpack)       # -> build/cairn_VERSION_ARCH.deb
# Prefix /usr (so the config is /etc/cairn/cairn.conf and the unit /lib/systemd/system).
# Depends: the shared libraries the binaries link, found by dpkg-shlibdeps (libleveldb1d,
# libmbedtls14, libmbedx509-1, libmbedcrypto7 and libc6 on Debian 12), and adduser for
# postinst. The maintainer scripts (packaging/debian) create the cairn user and
# /var/lib/cairn, and enable or start nothing; /etc/cairn/cairn.conf and /etc/logrotate.d/cairn
# are conffiles; no package script ever deletes /var/lib/cairn (postrm says what purge removes).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cairn)
set(CPACK_PACKAGE_VENDOR "Cairn")
set(CPACK_PACKAGE_CONTACT "Cairn maintainers <cairn@example.org>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "MQTT 3.1.1 broker that never loses an acknowledged message")
set(CPACK_PACKAGE_DESCRIPTION
    "Cairn stores every QoS 1 and 2 message in LevelDB before it acknowledges it, so a message it has acknowledged survives a reconnect, kill -9 and, with persistence_sync true, power loss. It reads Mosquitto's configuration options, password, ACL and PSK files, speaks TLS through mbedTLS, and runs as a systemd service (Type=notify) under its own user.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# install with DESTDIR and the real prefix: the unit and config get /usr and /etc paths
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto-clients, logrotate")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# only the install rules of packaging/install.cmake: tests install nothing
include(CPack)
