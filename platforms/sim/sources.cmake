# The fleet simulator (include/tether/sim.h): histogram, profiles, runner, reports.
list(APPEND TT_PLATFORM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/hist.c
  ${CMAKE_CURRENT_LIST_DIR}/profiles.c
  ${CMAKE_CURRENT_LIST_DIR}/sim.c
  ${CMAKE_CURRENT_LIST_DIR}/report.c
  ${CMAKE_CURRENT_LIST_DIR}/report_html.c)
