# Install headers, libraries, the CMake package (tether::tether) and tether.pc.
include(CMakePackageConfigHelpers)

set(TT_INSTALL_TARGETS tether)
if(TARGET tether_static)
  list(APPEND TT_INSTALL_TARGETS tether_static)
endif()
install(TARGETS ${TT_INSTALL_TARGETS} EXPORT tetherTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/tether DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${PROJECT_BINARY_DIR}/include/tether DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

set(TT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tether)
install(EXPORT tetherTargets NAMESPACE tether:: DESTINATION ${TT_CMAKE_DIR})

# Static consumers need the dependencies' imported targets again: record how each was found.
set(TT_CONFIG_DEPS "")
foreach(var TT_EVENT_CORE TT_EVENT_PTHREAD TT_EVENT_EXTRA TT_WOLFSSL TT_JANSSON TT_MSGPACK TT_PROTOBUF_C)
  if(DEFINED ${var}_PCNAME)
    string(APPEND TT_CONFIG_DEPS "pkg_check_modules(${var}_PC REQUIRED QUIET IMPORTED_TARGET ${${var}_PCNAME})\n")
  endif()
endforeach()
configure_package_config_file(cmake/tetherConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tetherConfig.cmake INSTALL_DESTINATION ${TT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tetherConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tetherConfig.cmake ${PROJECT_BINARY_DIR}/tetherConfigVersion.cmake
  DESTINATION ${TT_CMAKE_DIR})

# Relocatable: the prefix is found from the .pc file's own place.
file(RELATIVE_PATH TT_PC_RELATIVE_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" TT_PC_RELATIVE_PREFIX "${TT_PC_RELATIVE_PREFIX}")
configure_file(cmake/tether.pc.in ${PROJECT_BINARY_DIR}/tether.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tether.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
